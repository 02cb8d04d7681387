"""vidseg::object_affinity (SSTVOS Eq. 4) against a loop oracle over dense masked attention weights."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.object_affinity import _object_affinity_op, object_affinity, object_affinity_reference
from vidseg_common.ops.sparse_st_attn import _sparse_st_attn_op, sparse_st_attn, sparse_st_attn_reference
from vidseg_common.ops.sparse_st_attn_patterns import connectivity_mask


def _inputs(n: int, c: int, t: int, h: int, w: int, num_objects: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, c, t, h, w, generator=gen, dtype=torch.float64) for _ in range(3))
    labels = torch.randint(0, num_objects, (n, t, h, w), generator=gen)
    labels[0, -1, 0, 0] = 255  # a void cell (last frame: no query attends to it causally) belongs to no object
    return q, k, v, labels


@pytest.mark.parametrize(("pattern", "params"), [("grid", []), ("local", [3]), ("strided", [1, 2, 2])])
def test_matches_loop_oracle(pattern, params):
    q, k, v, labels = _inputs(2, 3, 3, 3, 4, num_objects=3, seed=1)
    _, weights = _sparse_st_attn_op(q, k, v, pattern, params, False, 1.0)
    _, dense = sparse_st_attn_reference(q, k, v, pattern, params)
    expected = object_affinity_reference(dense, connectivity_mask(pattern, params, [3, 3, 4]), labels, 3)
    got = _object_affinity_op(weights, labels, 3, pattern, params)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert (got[:, :, 0] == 0).all()  # the first frame has no earlier frame
    assert (got[:, :, 1:] > 0).any(dim=1).all()  # every later cell sees some object in an earlier frame


def test_zero_where_object_absent_from_earlier_frames():
    q, k, v, labels = _inputs(1, 2, 2, 3, 3, num_objects=3, seed=2)
    labels[:, 0] = 1  # frame 0 shows only object 1
    labels[0, 0, 0, 0] = 255
    _, weights = _sparse_st_attn_op(q, k, v, "local", [3], False, 1.0)
    got = _object_affinity_op(weights, labels, 3, "local", [3])
    assert (got[:, 0] == 0).all() and (got[:, 2] == 0).all()
    assert (got[:, 1, 1] > 0).all()


def test_multihead_wrapper_and_gradcheck():
    q, k, v, labels = _inputs(1, 4, 2, 2, 3, num_objects=2, seed=3)
    _, weights = sparse_st_attn(q, k, v, "grid", num_heads=2, return_weights=True)
    out = object_affinity(weights, labels, 2, "grid", [])
    assert out.shape == (1, 2, 2, 2, 2, 3)
    torch.testing.assert_close(out[:, 1], object_affinity(weights[:, 1], labels, 2, "grid", []))
    leaf = weights[:, 0].detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: _object_affinity_op(x, labels, 2, "grid", []), (leaf,))


def test_opcheck_and_compile():
    q, k, v, labels = _inputs(1, 2, 2, 3, 3, num_objects=2, seed=4)
    _, weights = _sparse_st_attn_op(q, k, v, "strided", [1, 2, 2], False, 1.0)
    weights = weights.detach().requires_grad_(True)
    torch.library.opcheck(torch.ops.vidseg.object_affinity.default, (weights, labels, 2, "strided", [1, 2, 2]))
    compiled = torch.compile(lambda x: object_affinity(x, labels, 2, "strided", [1, 2, 2]), fullgraph=True)
    torch.testing.assert_close(compiled(weights), object_affinity(weights, labels, 2, "strided", [1, 2, 2]))


def test_bad_input():
    q, k, v, labels = _inputs(1, 2, 2, 3, 3, num_objects=2, seed=5)
    _, weights = _sparse_st_attn_op(q, k, v, "grid", [], False, 1.0)
    with pytest.raises(DataError, match="labels must lie"):
        object_affinity(weights, labels + 5, 2, "grid", [])
    with pytest.raises(DataError, match="slots"):
        object_affinity(weights, labels, 2, "local", [3])
    with pytest.raises(DataError, match="int64"):
        object_affinity(weights, labels.int(), 2, "grid", [])
    with pytest.raises(DataError, match="shape"):
        object_affinity(weights, labels[:, :1], 2, "grid", [])
    with pytest.raises(ConfigError, match="num_objects"):
        object_affinity(weights, labels, 0, "grid", [])


def test_benchmark_counts_the_op_as_zero_flops_not_uncounted():
    from vidseg_common.engine.benchmark import count_flops

    q, k, v, labels = _inputs(1, 2, 2, 3, 3, num_objects=2, seed=4)
    _, weights = _sparse_st_attn_op(q, k, v, "local", [3], False, 1.0)
    flops, uncounted = count_flops(lambda w: _object_affinity_op(w, labels, 2, "local", [3]), [weights])
    assert flops == 0 and uncounted == []
