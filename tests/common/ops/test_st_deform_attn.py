"""Tests of ``vidseg::st_deform_attn`` (trilinear spatio-temporal deformable attention, docs/reference/vis.md §2.7–2.9)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidseg_common.ops import st_deform_attn as sda
from vidseg_common.ops.ms_deform_attn import ms_deform_attn, ms_deform_attn_reference
from vidseg_common.ops.st_deform_attn import st_deform_attn, st_deform_attn_reference, st_deform_attn_torch

SHAPES = [3, 4, 5, 2, 2, 3]  # levels (T, H, W) = (3, 4, 5), (2, 2, 3): S = 60 + 12


def random_inputs(n, m, d, lq, shapes, k, dtype=torch.float64, lo=0.0, hi=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n_levels = len(shapes) // 3
    s = sum(shapes[3 * i] * shapes[3 * i + 1] * shapes[3 * i + 2] for i in range(n_levels))
    value = torch.rand(n, s, m, d, generator=gen, dtype=dtype) + 0.1
    loc = torch.rand(n, lq, m, n_levels, k, 3, generator=gen, dtype=dtype) * (hi - lo) + lo
    attn = torch.rand(n, lq, m, n_levels, k, generator=gen, dtype=dtype) + 1e-5
    return value, loc, attn / attn.sum((-1, -2), keepdim=True)


@pytest.mark.parametrize(
    ("n", "m", "d", "lq", "shapes", "k", "lo", "hi"),
    [
        (2, 2, 3, 5, SHAPES, 3, 0.0, 1.0),
        (1, 3, 2, 6, [1, 3, 3, 4, 1, 2], 4, -0.5, 1.5),  # T=1 level, out-of-range points
        (1, 1, 4, 3, [5, 2, 2], 6, -2.0, 3.0),  # mostly far outside
    ],
)
def test_torch_path_matches_reference_float64(n, m, d, lq, shapes, k, lo, hi):
    value, loc, attn = random_inputs(n, m, d, lq, shapes, k, lo=lo, hi=hi)
    ref = st_deform_attn_reference(value, shapes, loc, attn)
    assert ref.abs().sum() > 0
    torch.testing.assert_close(st_deform_attn_torch(value, shapes, loc, attn), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(st_deform_attn(value, shapes, loc, attn), ref, rtol=1e-12, atol=1e-12)


def test_float32_matches_float64():
    value, loc, attn = random_inputs(2, 2, 4, 6, SHAPES, 3, lo=-0.2, hi=1.2)
    ref = st_deform_attn_reference(value, SHAPES, loc, attn)
    out = st_deform_attn(value.float(), SHAPES, loc.float(), attn.float())
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-3)


def test_voxel_centres_and_temporal_interpolation():
    """Independent facts: a voxel centre reads the voxel; halfway between two frames reads their mean."""
    t, h, w = 3, 2, 4
    vol = torch.arange(t * h * w, dtype=torch.float64).view(1, -1, 1, 1) + 1.0
    pts = torch.tensor(
        [
            [(3 + 0.5) / w, (1 + 0.5) / h, (2 + 0.5) / t],
            [(0 + 0.5) / w, (0 + 0.5) / h, 1.0 / t],
            [0.5, 0.5, 1.6],
        ],
        dtype=torch.float64,
    )
    loc = pts.view(1, 3, 1, 1, 1, 3)
    attn = torch.ones(1, 3, 1, 1, 1, dtype=torch.float64)
    expected = torch.tensor([2 * h * w + 1 * w + 3 + 1.0, (0 + h * w) / 2 + 1.0, 0.0], dtype=torch.float64)
    for fn in (st_deform_attn_reference, st_deform_attn):
        torch.testing.assert_close(fn(vol, [t, h, w], loc, attn).view(3), expected)


def test_t1_zero_temporal_offset_equals_ms_deform_attn():
    ms_shapes = [4, 5, 2, 3]
    st_shapes = [1, 4, 5, 1, 2, 3]
    gen = torch.Generator().manual_seed(4)
    value = torch.rand(2, 26, 2, 3, generator=gen, dtype=torch.float64)
    loc_xy = torch.rand(2, 5, 2, 2, 3, 2, generator=gen, dtype=torch.float64) * 1.4 - 0.2
    attn = torch.rand(2, 5, 2, 2, 3, generator=gen, dtype=torch.float64)
    loc_xyt = torch.cat([loc_xy, torch.full_like(loc_xy[..., :1], 0.5)], -1)
    expected = ms_deform_attn_reference(value, ms_shapes, loc_xy, attn)
    torch.testing.assert_close(
        st_deform_attn(value, st_shapes, loc_xyt, attn), expected, rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        ms_deform_attn(value, ms_shapes, loc_xy, attn), expected, rtol=1e-12, atol=1e-12
    )


def test_frame_centre_equals_ms_deform_attn_on_that_frame():
    """Sampling exactly at frame f's centre in t is 2-D deformable attention on frame f."""
    t, h, w, f = 4, 3, 5, 2
    value, loc, attn = random_inputs(1, 2, 3, 4, [t, h, w], 3, lo=-0.1, hi=1.1, seed=2)
    loc[..., 2] = (f + 0.5) / t
    frame = value[:, f * h * w : (f + 1) * h * w]
    expected = ms_deform_attn_reference(frame, [h, w], loc[..., :2].contiguous(), attn)
    torch.testing.assert_close(st_deform_attn(value, [t, h, w], loc, attn), expected, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    value, loc, attn = random_inputs(1, 2, 2, 3, [3, 3, 2, 1, 2, 2], 2, lo=-0.1, hi=1.1, seed=7)
    shapes = [3, 3, 2, 1, 2, 2]
    args = (value.requires_grad_(), loc.requires_grad_(), attn.requires_grad_())
    assert torch.autograd.gradcheck(lambda v, x, a: st_deform_attn(v, shapes, x, a), args)
    assert torch.autograd.gradcheck(lambda v, x, a: st_deform_attn_reference(v, shapes, x, a), args)


def test_backend_switch(monkeypatch):
    value, loc, attn = random_inputs(1, 1, 2, 2, [2, 2, 2], 1)
    calls = []
    original = sda.st_deform_attn_reference
    monkeypatch.setattr(sda, "st_deform_attn_reference", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "reference")
    out_ref = st_deform_attn(value, [2, 2, 2], loc, attn)
    assert calls
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "torch")
    calls.clear()
    torch.testing.assert_close(st_deform_attn(value, [2, 2, 2], loc, attn), out_ref)
    assert not calls


def test_opcheck():
    value, loc, attn = random_inputs(1, 2, 2, 3, SHAPES, 2, lo=-0.1, hi=1.1)
    torch.library.opcheck(torch.ops.vidseg.st_deform_attn.default, (value, SHAPES, loc, attn))


def test_torch_compile_fullgraph():
    value, loc, attn = random_inputs(1, 2, 3, 3, SHAPES, 2)
    fn = torch.compile(
        lambda v, x, a: st_deform_attn(v, SHAPES, x, a) * 2, fullgraph=True, backend="aot_eager"
    )
    args = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out = fn(*args)
    torch.testing.assert_close(out, 2 * st_deform_attn_reference(value, SHAPES, loc, attn))
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in args)


def test_flop_counter_counts_op():
    n, m, d, lq, k = 1, 2, 3, 4, 5
    value, loc, attn = random_inputs(n, m, d, lq, SHAPES, k)
    with FlopCounterMode(display=False) as counter:
        st_deform_attn(value, SHAPES, loc, attn)
    assert (
        counter.get_flop_counts()["Global"][torch.ops.vidseg.st_deform_attn] == 2 * 9 * n * lq * m * 2 * k * d
    )


def test_non_contiguous_and_empty():
    value, loc, attn = random_inputs(1, 2, 3, 4, SHAPES, 2, lo=-0.2, hi=1.2)
    value_nc = value.transpose(2, 3).contiguous().transpose(2, 3)
    loc_nc = torch.stack([loc, loc + 1], -1)[..., 0]
    expected = st_deform_attn_reference(value, SHAPES, loc, attn)
    torch.testing.assert_close(st_deform_attn(value_nc, SHAPES, loc_nc, attn), expected)
    empty = random_inputs(1, 2, 3, 0, SHAPES, 2)
    assert st_deform_attn(empty[0], SHAPES, empty[1], empty[2]).shape == (1, 0, 6)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda v, s, x, a: (v, [3, 4, 5, 2, 2, 2], x, a), "sum to"),
        (lambda v, s, x, a: (v, [3, 4, 5, 2, 2], x, a), "L·3"),
        (lambda v, s, x, a: (v, s, x[..., :2], a), "sampling_locations must be"),
        (lambda v, s, x, a: (v, s, x, a[:, :1]), "attention_weights must be"),
        (lambda v, s, x, a: (v, s, x.float(), a), "share a dtype"),
    ],
)
def test_bad_input_clear_errors(mutate, match):
    value, loc, attn = random_inputs(1, 2, 3, 4, SHAPES, 2)
    args = mutate(value, SHAPES, loc, attn)
    with pytest.raises((ValueError, TypeError), match=match):
        st_deform_attn(*args)
    with pytest.raises(ValueError, match="level_start_index"):
        st_deform_attn(value, SHAPES, loc, attn, level_start_index=torch.tensor([0, 61]))
    torch.testing.assert_close(
        st_deform_attn(value, torch.tensor([[3, 4, 5], [2, 2, 3]]), loc, attn, torch.tensor([0, 60])),
        st_deform_attn(value, SHAPES, loc, attn),
    )


def test_matches_5d_grid_sample_definition():
    """The op equals ``F.grid_sample`` on the (T, H, W) volume (trilinear, align_corners=False, zeros)."""
    t, h, w = 3, 4, 5
    value, loc, attn = random_inputs(1, 2, 3, 4, [t, h, w], 3, lo=-0.3, hi=1.3, seed=11)
    expected = []
    for head in range(2):
        vol = value[:, :, head].reshape(1, t, h, w, 3).permute(0, 4, 1, 2, 3)  # (1, D, T, H, W)
        grid = (2 * loc[:, :, head, 0] - 1)[:, None]  # (1, 1, Lq, K, 3)
        sampled = torch.nn.functional.grid_sample(vol, grid, mode="bilinear", align_corners=False)[:, :, 0]
        expected.append((sampled * attn[:, None, :, head, 0]).sum(-1).transpose(1, 2))  # (1, Lq, D)
    expected = torch.cat(expected, -1)
    torch.testing.assert_close(st_deform_attn(value, [t, h, w], loc, attn), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        st_deform_attn_reference(value, [t, h, w], loc, attn), expected, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("dims", [2, 3])
def test_query_chunking_is_exact(dims):
    """The shared embedding_bag core split into many query chunks (N=2) equals the reference, with gradients."""
    from vidseg_common.ops.ms_deform_attn_core import deform_attn_gather

    if dims == 3:
        shapes, reference = SHAPES, st_deform_attn_reference
        value, loc, attn = random_inputs(2, 2, 3, 7, shapes, 2, lo=-0.3, hi=1.3, seed=13)
    else:
        shapes, reference = [6, 4, 3, 2], ms_deform_attn_reference
        value, loc, attn = random_inputs(2, 2, 3, 7, [1, 6, 4, 1, 3, 2], 2, lo=-0.3, hi=1.3, seed=13)
        value, loc = value[:, :30], loc[..., :2].contiguous()
    args = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out = deform_attn_gather(*args[:1], shapes, *args[1:], dims, chunk_entries=50)
    torch.testing.assert_close(out, reference(value, shapes, loc, attn), rtol=1e-12, atol=1e-12)
    out.square().sum().backward()
    ref_args = [t.clone().requires_grad_() for t in (value, loc, attn)]
    reference(ref_args[0], shapes, ref_args[1], ref_args[2]).square().sum().backward()
    for got, want in zip(args, ref_args):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-10, atol=1e-12)


def test_autocast_runs_in_float32():
    value, loc, attn = random_inputs(1, 2, 3, 4, SHAPES, 2, dtype=torch.float32, lo=-0.2, hi=1.2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = st_deform_attn(value.bfloat16(), SHAPES, loc, attn.bfloat16())
    assert out.dtype == torch.float32
    expected = st_deform_attn_reference(value.bfloat16().float(), SHAPES, loc, attn.bfloat16().float())
    torch.testing.assert_close(out, expected)
