"""vidseg::sparse_st_attn against dense masked attention (the oracle) and the released grid kernel's layout."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.sparse_st_attn import _sparse_st_attn_op, sparse_st_attn, sparse_st_attn_reference
from vidseg_common.ops.sparse_st_attn_patterns import connectivity_mask, slot_key_index

CASES = [
    ("grid", [], (2, 3, 4, 5)),
    ("grid", [], (1, 1, 3, 4)),  # T = 1: no time slots
    ("local", [3], (2, 3, 4, 5)),
    ("local", [5], (1, 2, 3, 2)),  # window larger than the frame
    ("local", [3], (1, 2, 9, 11)),  # several 8×8 tiles of the CPU forward
    ("strided", [1, 2, 2], (2, 3, 4, 5)),
    ("strided", [2, 3, 2], (1, 3, 5, 4)),  # strides not dividing the sizes
]


def _qkv(n: int, c: int, t: int, h: int, w: int, cv: int | None = None, seed: int = 0, grad: bool = False):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(n, c, t, h, w), (n, c, t, h, w), (n, cv or c, t, h, w)]
    return [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_(grad) for s in shapes]


def _slots_to_dense(weights: torch.Tensor, pattern: str, params: list[int], causal: bool) -> torch.Tensor:
    n, _, t, h, w = weights.shape
    index = slot_key_index(pattern, params, [t, h, w], causal)
    dense = weights.new_zeros(n, t * h * w, t * h * w)
    src = weights.flatten(2).transpose(1, 2).masked_fill(index < 0, 0.0)
    return dense.scatter_add_(-1, index.clamp_min(0).expand(n, -1, -1), src)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("pattern", "params", "size"), CASES)
def test_matches_dense_masked_attention(pattern, params, size, causal):
    q, k, v = _qkv(size[0], 3, *size[1:], cv=4)
    out, weights = _sparse_st_attn_op(q, k, v, pattern, params, causal, 0.8)
    ref_out, ref_weights = sparse_st_attn_reference(q, k, v, pattern, params, causal, 0.8)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_slots_to_dense(weights, pattern, params, causal), ref_weights, rtol=1e-12, atol=1e-12)
    # every non-empty slot is a distinct connected cell, and the slots cover the whole pattern
    index = slot_key_index(pattern, params, list(size[1:]), causal)
    mask = connectivity_mask(pattern, params, list(size[1:]), causal)
    assert ((index >= 0).sum(1) == mask.sum(1)).all()


def test_grid_weights_follow_released_kernel_layout():
    """Literal port of gridattn.cu's slot → cell rule (docs/reference/vos.md §1.3), checked cell by cell."""
    t_n, h_n, w_n = 3, 4, 5
    q, k, v = _qkv(1, 2, t_n, h_n, w_n, seed=3)
    _, weights = _sparse_st_attn_op(q, k, v, "grid", [], False, 1.0)
    _, dense = sparse_st_attn_reference(q, k, v, "grid", [], False, 1.0)
    assert weights.shape == (1, w_n + h_n + t_n - 2, t_n, h_n, w_n)
    for t in range(t_n):
        for y in range(h_n):
            for x in range(w_n):
                p = (t * h_n + y) * w_n + x
                for z in range(weights.shape[1]):
                    if z < w_n:
                        cell = (t, y, z)
                    elif z < w_n + h_n - 1:
                        j = z - w_n
                        cell = (t, j if j < y else j + 1, x)
                    else:
                        kk = z - (w_n + h_n - 1)
                        cell = (kk if kk < t else kk + 1, y, x)
                    flat = (cell[0] * h_n + cell[1]) * w_n + cell[2]
                    assert weights[0, z, t, y, x].item() == pytest.approx(dense[0, p, flat].item(), abs=1e-12)


def test_causal_grid_gives_zero_weight_to_future_frames():
    q, k, v = _qkv(1, 2, 3, 2, 2, seed=1)
    _, weights = _sparse_st_attn_op(q, k, v, "grid", [], True, 1.0)
    time_slots = weights[0, 2 + 2 - 1 :]  # (T-1, T, H, W): slot kk → frame kk (< t) or kk + 1
    assert (time_slots[1, 0] == 0).all() and (time_slots[0, 0] == 0).all()  # frame 0 sees no other frame
    assert (time_slots[0, 1] > 0).all() and (time_slots[1, 1] == 0).all()  # frame 1 sees frame 0 only
    torch.testing.assert_close(weights.sum(1), torch.ones(1, 3, 2, 2, dtype=torch.float64))


@pytest.mark.parametrize(("pattern", "params", "causal"), [("grid", [], True), ("local", [3], False), ("strided", [2, 2, 1], True)])
def test_gradcheck(pattern, params, causal):
    q, k, v = _qkv(2, 2, 2, 3, 3, cv=3, seed=5, grad=True)
    # fast mode (random projections of the Jacobian): the weights output has N·Z·S entries
    fn = lambda a, b, c: _sparse_st_attn_op(a, b, c, pattern, params, causal, 0.5)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v), fast_mode=True)
    # without kept weights the backward recomputes them
    fn = lambda a, b, c: _sparse_st_attn_op(a, b, c, pattern, params, causal, 0.5, False)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, [x[:1].detach().requires_grad_() for x in (q, k, v)], fast_mode=True)


def test_opcheck():
    q, k, v = _qkv(2, 3, 2, 3, 4, cv=2, seed=7, grad=True)
    for pattern, params in (("grid", []), ("local", [3]), ("strided", [1, 2, 2])):
        torch.library.opcheck(torch.ops.vidseg.sparse_st_attn.default, (q, k, v, pattern, params, True, 1.0))
    torch.library.opcheck(torch.ops.vidseg.sparse_st_attn.default, (q, k, v, "grid", [], False, 1.0, False))


def test_torch_compile_fullgraph():
    q, k, v = _qkv(1, 4, 2, 3, 4, seed=9)
    q, k, v = q.float(), k.float(), v.float()

    def run(a, b, c):
        return sparse_st_attn(a, b, c, "local_strided", num_heads=2, kernel_size=3, stride=2) * 2

    torch.testing.assert_close(torch.compile(run, fullgraph=True, backend="aot_eager")(q, k, v), run(q, k, v))
    compiled = torch.compile(lambda a, b, c: sparse_st_attn(a, b, c, "grid", causal=True), fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), sparse_st_attn(q, k, v, "grid", causal=True))


def test_multihead_and_local_strided_head_groups():
    q, k, v = _qkv(2, 8, 2, 3, 4, cv=4, seed=11)
    out, (w_local, w_strided) = sparse_st_attn(q, k, v, "local_strided", num_heads=4, kernel_size=3, stride=2, return_weights=True)
    heads = [x.reshape(2, 4, -1, 2, 3, 4) for x in (q, k, v)]
    expected = []
    for head in range(4):
        pattern, params = ("local", [3]) if head < 2 else ("strided", [1, 2, 2])
        expected.append(sparse_st_attn_reference(*(x[:, head] for x in heads), pattern, params)[0])
    torch.testing.assert_close(out, torch.stack(expected, 1).reshape(2, 4, 2, 3, 4))
    assert w_local.shape == (2, 2, 2 * 9, 2, 3, 4) and w_strided.shape == (2, 2, 2 * 2 * 2, 2, 3, 4)


def test_scale_default_is_one_and_scale_is_applied():
    q, k, v = _qkv(1, 4, 2, 3, 3, seed=13)
    unscaled = sparse_st_attn(q, k, v, "grid")
    torch.testing.assert_close(unscaled, sparse_st_attn_reference(q, k, v, "grid", [], False, 1.0)[0])
    scaled = sparse_st_attn(q, k, v, "grid", scale=0.5)
    torch.testing.assert_close(scaled, sparse_st_attn_reference(q, k, v, "grid", [], False, 0.5)[0])
    assert not torch.allclose(scaled, unscaled)


def test_reference_backend_switch(monkeypatch):
    q, k, v = _qkv(1, 2, 2, 3, 3, seed=15)
    fast = _sparse_st_attn_op(q, k, v, "local", [3], True, 1.0)
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "reference")
    ref = _sparse_st_attn_op(q, k, v, "local", [3], True, 1.0)
    for a, b in zip(fast, ref, strict=True):
        torch.testing.assert_close(a, b)
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "bogus")
    with pytest.raises(ConfigError, match="VIDSEG_OPS_BACKEND"):
        _sparse_st_attn_op(q, k, v, "local", [3], True, 1.0)


def test_non_contiguous_inputs_equal_contiguous():
    q, k, v = _qkv(1, 3, 2, 4, 3, seed=17)
    qt, kt, vt = (x.transpose(3, 4).contiguous().transpose(3, 4) for x in (q, k, v))
    assert not qt.is_contiguous()
    torch.testing.assert_close(sparse_st_attn(qt, kt, vt, "grid"), sparse_st_attn(q, k, v, "grid"))


def test_bad_input_raises_clear_errors():
    q, k, v = _qkv(1, 4, 2, 3, 3, seed=19)
    with pytest.raises(DataError, match="5-d"):
        sparse_st_attn(q[0], k, v)
    with pytest.raises(DataError, match="dtype"):
        sparse_st_attn(q.long(), k.long(), v.long())
    with pytest.raises(DataError, match="key shape"):
        sparse_st_attn(q, k[:, :, :1], v)
    with pytest.raises(DataError, match="value shape"):
        sparse_st_attn(q, k, v[..., :2])
    with pytest.raises(DataError, match="num_heads"):
        sparse_st_attn(q, k, v, num_heads=3)
    with pytest.raises(ConfigError, match="unknown pattern"):
        sparse_st_attn(q, k, v, "axial")
    with pytest.raises(ConfigError, match="odd"):
        sparse_st_attn(q, k, v, "local", kernel_size=4)
    with pytest.raises(ConfigError, match="parameter"):
        _sparse_st_attn_op(q, k, v, "strided", [2], False, 1.0)
    with pytest.raises(ConfigError, match="even num_heads"):
        sparse_st_attn(q, k, v, "local_strided", num_heads=1)


def test_flop_counter_counts_the_op():
    q, k, v = _qkv(2, 4, 3, 5, 6, cv=2, seed=21, grad=True)
    z, cells = 6 + 5 + 3 - 2, 3 * 5 * 6
    forward = 2 * 2 * cells * z * (4 + 2)
    for keep_weights, backward in ((True, 2 * forward), (False, 3 * forward)):  # without weights: recomputed
        with FlopCounterMode(display=False) as counter:
            out = sparse_st_attn(q, k, v, "grid", return_weights=keep_weights)
        assert counter.get_flop_counts()["Global"][torch.ops.vidseg.sparse_st_attn] == forward
        with FlopCounterMode(display=False) as counter:
            (out[0] if keep_weights else out).sum().backward()
        assert counter.get_flop_counts()["Global"][torch.ops.vidseg.sparse_st_attn_backward] == backward
