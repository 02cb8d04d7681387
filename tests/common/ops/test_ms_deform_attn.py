"""Tests of ``vidseg::ms_deform_attn`` (port of Deformable DETR ``models/ops/test.py``, docs/reference/vis.md §1.5)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vidseg_common.ops import ms_deform_attn as mda
from vidseg_common.ops.ms_deform_attn import ms_deform_attn, ms_deform_attn_reference, ms_deform_attn_torch

DETR_SHAPES = [6, 4, 3, 2]  # the official test's levels (6, 4), (3, 2): S = 30


def random_inputs(n, m, d, lq, shapes, p, dtype=torch.float64, lo=0.0, hi=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n_levels = len(shapes) // 2
    s = sum(shapes[2 * i] * shapes[2 * i + 1] for i in range(n_levels))
    value = torch.rand(n, s, m, d, generator=gen, dtype=dtype) + 0.1
    loc = torch.rand(n, lq, m, n_levels, p, 2, generator=gen, dtype=dtype) * (hi - lo) + lo
    attn = torch.rand(n, lq, m, n_levels, p, generator=gen, dtype=dtype) + 1e-5
    attn = attn / attn.sum((-1, -2), keepdim=True)
    return value, loc, attn


def test_official_config_forward_double():
    """check_forward_equal_with_pytorch_double: seed 3, N=1, M=2, D=2, Lq=2, L=2, P=2, value·0.01."""
    torch.manual_seed(3)
    value = torch.rand(1, 30, 2, 2, dtype=torch.float64) * 0.01
    loc = torch.rand(1, 2, 2, 2, 2, 2, dtype=torch.float64)
    attn = torch.rand(1, 2, 2, 2, 2, dtype=torch.float64) + 1e-5
    attn = attn / attn.sum((-1, -2), keepdim=True)
    ref = ms_deform_attn_reference(value, DETR_SHAPES, loc, attn)
    torch.testing.assert_close(ms_deform_attn(value, DETR_SHAPES, loc, attn), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("n", "m", "d", "lq", "shapes", "p", "lo", "hi"),
    [
        (2, 2, 3, 5, DETR_SHAPES, 3, 0.0, 1.0),
        (1, 3, 4, 7, [5, 7, 1, 1, 2, 3], 2, -0.5, 1.5),  # out-of-range points, a 1×1 level
        (2, 1, 5, 4, [4, 4], 4, -2.0, 3.0),  # mostly far outside: zeros there
    ],
)
def test_torch_path_matches_reference_float64(n, m, d, lq, shapes, p, lo, hi):
    value, loc, attn = random_inputs(n, m, d, lq, shapes, p, lo=lo, hi=hi)
    ref = ms_deform_attn_reference(value, shapes, loc, attn)
    assert ref.abs().sum() > 0
    torch.testing.assert_close(ms_deform_attn_torch(value, shapes, loc, attn), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ms_deform_attn(value, shapes, loc, attn), ref, rtol=1e-12, atol=1e-12)


def test_float32_matches_float64():
    """check_forward_equal_with_pytorch_float: rtol 1e-2, atol 1e-3."""
    value, loc, attn = random_inputs(2, 2, 4, 6, DETR_SHAPES, 2, lo=-0.2, hi=1.2)
    ref = ms_deform_attn_reference(value, DETR_SHAPES, loc, attn)
    out = ms_deform_attn(value.float(), DETR_SHAPES, loc.float(), attn.float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-3)


def test_reference_reads_pixels_and_interpolates():
    """Independent facts: a pixel centre reads the pixel, the midpoint of two pixels their mean, far outside 0."""
    h, w = 3, 4
    grid = torch.arange(h * w, dtype=torch.float64).view(1, h * w, 1, 1) + 1.0
    pts = torch.tensor(
        [[(1 + 0.5) / w, (2 + 0.5) / h], [2.0 / w, (0 + 0.5) / h], [-1.0, 0.5], [0.0, 0.0]],
        dtype=torch.float64,
    )
    loc = pts.view(1, 4, 1, 1, 1, 2)
    attn = torch.ones(1, 4, 1, 1, 1, dtype=torch.float64)
    expected = torch.tensor([2 * w + 1 + 1.0, (1 + 2) / 2 + 1.0, 0.0, 1.0 / 4], dtype=torch.float64)
    for fn in (ms_deform_attn_reference, ms_deform_attn):
        torch.testing.assert_close(fn(grid, [h, w], loc, attn).view(4), expected)


def test_reference_matches_grid_sample_definition():
    """The Deformable DETR PyTorch core, written out here with grid_sample (docs/reference/vis.md §1.3)."""
    value, loc, attn = random_inputs(1, 2, 3, 4, [3, 5, 2, 2], 2, lo=-0.3, hi=1.3, seed=5)
    outs = []
    start = 0
    for lvl, (h, w) in enumerate([(3, 5), (2, 2)]):
        v = value[:, start : start + h * w, 0].reshape(1, h, w, 3).permute(0, 3, 1, 2)
        start += h * w
        s = F.grid_sample(v, 2 * loc[:, :, 0, lvl] - 1, align_corners=False)  # (1, D, Lq, P)
        outs.append((s * attn[:, None, :, 0, lvl]).sum(-1))
    expected = sum(outs).permute(0, 2, 1)
    got = ms_deform_attn_reference(value, [3, 5, 2, 2], loc, attn)[..., :3]
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", [1, 3, 8])
def test_gradcheck(channels):
    """check_gradient_numerical (value, locations, weights), float64, on the op and the reference."""
    value, loc, attn = random_inputs(1, 2, channels, 3, DETR_SHAPES, 2, lo=-0.1, hi=1.1, seed=channels)
    args = (value.requires_grad_(), loc.requires_grad_(), attn.requires_grad_())
    assert torch.autograd.gradcheck(lambda v, x, a: ms_deform_attn(v, DETR_SHAPES, x, a), args)
    if channels == 3:
        assert torch.autograd.gradcheck(lambda v, x, a: ms_deform_attn_reference(v, DETR_SHAPES, x, a), args)


def test_backward_reference_backend_agrees(monkeypatch):
    value, loc, attn = random_inputs(1, 2, 3, 4, DETR_SHAPES, 2, lo=-0.2, hi=1.2, seed=9)
    grads = []
    for backend in ("torch", "reference"):
        monkeypatch.setenv("VIDSEG_OPS_BACKEND", backend)
        args = [t.clone().requires_grad_() for t in (value, loc, attn)]
        (ms_deform_attn(args[0], DETR_SHAPES, args[1], args[2]) ** 2).sum().backward()
        grads.append([a.grad for a in args])
    for g_torch, g_ref in zip(*grads):
        torch.testing.assert_close(g_torch, g_ref, rtol=1e-10, atol=1e-12)


def test_backend_switch_reference_is_used(monkeypatch):
    value, loc, attn = random_inputs(1, 1, 2, 2, [2, 2], 1)
    calls = []
    original = mda.ms_deform_attn_reference

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(mda, "ms_deform_attn_reference", spy)
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "reference")
    ms_deform_attn(value, [2, 2], loc, attn)
    assert calls
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "torch")
    calls.clear()
    ms_deform_attn(value, [2, 2], loc, attn)
    assert not calls


def test_opcheck():
    value, loc, attn = random_inputs(1, 2, 3, 3, DETR_SHAPES, 2, lo=-0.1, hi=1.1)
    torch.library.opcheck(torch.ops.vidseg.ms_deform_attn.default, (value, DETR_SHAPES, loc, attn))


def test_torch_compile_fullgraph():
    """Dynamo traces the op whole (fake kernel + autograd formula); aot_eager keeps the test fast."""
    value, loc, attn = random_inputs(1, 2, 3, 3, DETR_SHAPES, 2)
    fn = torch.compile(
        lambda v, x, a: ms_deform_attn(v, DETR_SHAPES, x, a) * 2, fullgraph=True, backend="aot_eager"
    )
    args = [t.clone().requires_grad_() for t in (value, loc, attn)]
    out = fn(*args)
    torch.testing.assert_close(out, 2 * ms_deform_attn_reference(value, DETR_SHAPES, loc, attn))
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in args)


def test_flop_counter_counts_op():
    n, m, d, lq, p = 2, 2, 3, 5, 4
    value, loc, attn = random_inputs(n, m, d, lq, DETR_SHAPES, p)
    with FlopCounterMode(display=False) as counter:
        ms_deform_attn(value, DETR_SHAPES, loc, attn)
    counts = counter.get_flop_counts()["Global"]
    assert counts[torch.ops.vidseg.ms_deform_attn] == 2 * 5 * n * lq * m * 2 * p * d


def test_non_contiguous_inputs():
    value, loc, attn = random_inputs(1, 2, 3, 4, DETR_SHAPES, 2, lo=-0.2, hi=1.2)
    value_nc = value.transpose(2, 3).contiguous().transpose(2, 3)
    loc_nc = torch.stack([loc, loc + 1], -1)[..., 0]
    attn_nc = attn.flip(-1).contiguous().flip(-1)
    assert not value_nc.is_contiguous() and not loc_nc.is_contiguous()
    torch.testing.assert_close(
        ms_deform_attn(value_nc, DETR_SHAPES, loc_nc, attn_nc),
        ms_deform_attn_reference(value, DETR_SHAPES, loc, attn),
    )


def test_empty_queries():
    value, loc, attn = random_inputs(1, 2, 3, 0, DETR_SHAPES, 2)
    assert ms_deform_attn(value, DETR_SHAPES, loc, attn).shape == (1, 0, 6)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda v, s, x, a: (v[0], s, x, a), "value must be"),
        (lambda v, s, x, a: (v, [6, 4, 3, 3], x, a), "sum to"),
        (lambda v, s, x, a: (v, [6, 4, 3], x, a), "L·2"),
        (lambda v, s, x, a: (v, s, x[..., :1], a), "sampling_locations must be"),
        (lambda v, s, x, a: (v, s, x[:, :, :, :1], a), "does not match"),
        (lambda v, s, x, a: (v, s, x, a[..., :1]), "attention_weights must be"),
        (lambda v, s, x, a: (v.float(), s, x, a), "share a dtype"),
        (lambda v, s, x, a: (v.long(), s, x, a), "floating"),
    ],
)
def test_bad_input_clear_errors(mutate, match):
    value, loc, attn = random_inputs(1, 2, 3, 4, DETR_SHAPES, 2)
    args = mutate(value, DETR_SHAPES, loc, attn)
    with pytest.raises((ValueError, TypeError), match=match):
        ms_deform_attn(*args)
    with pytest.raises((ValueError, TypeError), match=match):
        torch.ops.vidseg.ms_deform_attn(*args)


def test_spatial_shapes_forms_and_level_start_index():
    value, loc, attn = random_inputs(1, 2, 3, 4, DETR_SHAPES, 2)
    expected = ms_deform_attn(value, DETR_SHAPES, loc, attn)
    shapes_t = torch.tensor([[6, 4], [3, 2]])
    out = ms_deform_attn(value, shapes_t, loc, attn, level_start_index=torch.tensor([0, 24]))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ms_deform_attn(value, [(6, 4), (3, 2)], loc, attn), expected)
    with pytest.raises(ValueError, match="level_start_index"):
        ms_deform_attn(value, shapes_t, loc, attn, level_start_index=torch.tensor([0, 20]))
    with pytest.raises(ValueError, match="spatial_shapes"):
        ms_deform_attn(value, shapes_t.float(), loc, attn)


def test_autocast_runs_in_float32():
    """Under autocast mixed-precision inputs are cast to float32 (as a Deformable DETR module produces them)."""
    value, loc, attn = random_inputs(1, 2, 3, 4, DETR_SHAPES, 2, dtype=torch.float32, lo=-0.2, hi=1.2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ms_deform_attn(value.bfloat16(), DETR_SHAPES, loc, attn.bfloat16())
    assert out.dtype == torch.float32
    expected = ms_deform_attn_reference(value.bfloat16().float(), DETR_SHAPES, loc, attn.bfloat16().float())
    torch.testing.assert_close(out, expected)


def test_huge_coordinates_read_zeros():
    """Points far outside (int32-overflowing pixel coordinates) contribute nothing, in every implementation."""
    value, loc, attn = random_inputs(1, 2, 3, 4, DETR_SHAPES, 2, lo=0.0, hi=1.0, seed=21)
    far = loc.clone()
    far[:, :2, :, :, 0] = torch.tensor([3e9, -5e9], dtype=torch.float64)
    far[:, 2:, :, 1, 1, 1] = 1e12
    keep = torch.ones_like(attn)
    keep[:, :2, :, :, 0] = 0
    keep[:, 2:, :, 1, 1] = 0
    expected = ms_deform_attn_reference(value, DETR_SHAPES, loc, attn * keep)
    torch.testing.assert_close(
        ms_deform_attn(value, DETR_SHAPES, far, attn), expected, rtol=1e-12, atol=1e-12
    )
