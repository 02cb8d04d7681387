"""Tests of the ``MSDeformAttn`` module against Deformable DETR's documented forward and init (docs/reference/vis.md §1.1–1.2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidseg_common.ops.ms_deform_attn_module import MSDeformAttn, grid_offset_directions

SHAPES = [(5, 6), (3, 3), (1, 2)]


def randomise(module: MSDeformAttn, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)


def detr_forward(module, query, ref, x, shapes, mask=None):
    """Deformable DETR's MSDeformAttn.forward + ms_deform_attn_core_pytorch, written out with grid_sample."""
    n, lq, c = query.shape
    m, n_levels, p = module.n_heads, module.n_levels, module.n_points
    value = F.linear(x, module.value_proj.weight, module.value_proj.bias)
    if mask is not None:
        value = value.masked_fill(mask[..., None], 0)
    value = value.view(n, -1, m, c // m)
    off = F.linear(query, module.sampling_offsets.weight, module.sampling_offsets.bias).view(
        n, lq, m, n_levels, p, 2
    )
    a = F.linear(query, module.attention_weights.weight, module.attention_weights.bias).view(
        n, lq, m, n_levels * p
    )
    a = a.softmax(-1).view(n, lq, m, n_levels, p)
    if ref.shape[-1] == 2:
        norm = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype)
        loc = ref[:, :, None, :, None, :] + off / norm[None, None, None, :, None, :]
    else:
        loc = ref[:, :, None, :, None, :2] + off / p * ref[:, :, None, :, None, 2:] * 0.5
    out = 0
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        v = value[:, start : start + h * w].flatten(2).transpose(1, 2).reshape(n * m, c // m, h, w)
        start += h * w
        g = (2 * loc[:, :, :, lvl] - 1).transpose(1, 2).flatten(0, 1)
        s = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)  # (N·M, D, Lq, P)
        out = out + (s * a[:, :, :, lvl].transpose(1, 2).flatten(0, 1)[:, None]).sum(-1)
    out = out.view(n, c, lq).transpose(1, 2)
    return F.linear(out, module.output_proj.weight, module.output_proj.bias)


def make_inputs(n=2, lq=4, c=8, ref_dims=2, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in SHAPES)
    query = torch.randn(n, lq, c, generator=gen, dtype=dtype)
    x = torch.randn(n, s, c, generator=gen, dtype=dtype)
    ref = torch.rand(n, lq, len(SHAPES), ref_dims, generator=gen, dtype=dtype)
    return query, ref, x


def test_grid_init_matches_deformable_detr():
    expected_dirs = torch.tensor(
        [[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]], dtype=torch.float32
    )
    torch.testing.assert_close(grid_offset_directions(8), expected_dirs, atol=1e-6, rtol=0)
    module = MSDeformAttn(d_model=16, n_levels=3, n_heads=8, n_points=4)
    bias = module.sampling_offsets.bias.view(8, 3, 4, 2)
    for lvl in range(3):
        for p in range(4):
            torch.testing.assert_close(bias[:, lvl, p], (p + 1) * expected_dirs, atol=1e-6, rtol=0)
    assert module.sampling_offsets.weight.abs().sum() == 0
    assert module.attention_weights.weight.abs().sum() == 0 and module.attention_weights.bias.abs().sum() == 0
    assert module.value_proj.bias.abs().sum() == 0 and module.output_proj.bias.abs().sum() == 0


def test_uniform_attention_at_init():
    """At init every query averages its L·P grid points uniformly: check one query by hand."""
    torch.manual_seed(0)
    module = MSDeformAttn(d_model=4, n_levels=1, n_heads=1, n_points=2).double()
    with torch.no_grad():
        module.value_proj.weight.copy_(torch.eye(4))
        module.output_proj.weight.copy_(torch.eye(4))
    h, w = 4, 5
    x = torch.rand(1, h * w, 4, dtype=torch.float64) + 0.5
    ref = torch.tensor([[[[(1 + 0.5) / w, (2 + 0.5) / h]]]], dtype=torch.float64)  # pixel (x=1, y=2)
    out = module(torch.randn(1, 1, 4, dtype=torch.float64), ref, x, [(h, w)])
    grid = x.view(h, w, 4)
    expected = (grid[2, 2] + grid[2, 3]) / 2  # head 0 direction (1, 0): points 1 and 2 pixels to the right
    torch.testing.assert_close(out.view(4), expected)


@pytest.mark.parametrize("ref_dims", [2, 4])
def test_forward_matches_deformable_detr(ref_dims):
    module = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=3).double()
    randomise(module)
    query, ref, x = make_inputs(ref_dims=ref_dims)
    shapes_t = torch.tensor(SHAPES)
    start = torch.tensor([0, 30, 39])
    out = module(query, ref, x, shapes_t, start)
    torch.testing.assert_close(out, detr_forward(module, query, ref, x, SHAPES), rtol=1e-10, atol=1e-12)


def test_padding_mask_zeroes_padded_values():
    module = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=3).double()
    randomise(module, seed=1)
    query, ref, x = make_inputs(seed=1)
    mask = torch.zeros(x.shape[:2], dtype=torch.bool)
    mask[0, 3:12] = True
    mask[1, 31:] = True
    out = module(query, ref, x, SHAPES, input_padding_mask=mask)
    torch.testing.assert_close(out, detr_forward(module, query, ref, x, SHAPES, mask), rtol=1e-10, atol=1e-12)
    x2 = x.clone()
    x2[mask] = torch.randn(int(mask.sum()), 8, dtype=torch.float64) * 100
    torch.testing.assert_close(module(query, ref, x2, SHAPES, input_padding_mask=mask), out)
    empty = torch.zeros_like(mask)
    torch.testing.assert_close(
        module(query, ref, x, SHAPES, input_padding_mask=empty), module(query, ref, x, SHAPES)
    )


def test_gradients_reach_every_parameter():
    module = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2)
    randomise(module, seed=2)
    query, ref, x = make_inputs(dtype=torch.float32)
    module(query, ref, x, SHAPES).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        MSDeformAttn(d_model=10, n_heads=4)
    module = MSDeformAttn(d_model=8, n_levels=3, n_heads=2, n_points=2)
    query, ref, x = make_inputs(dtype=torch.float32)
    with pytest.raises(ValueError, match="levels"):
        module(query, ref, x, SHAPES[:2])
    with pytest.raises(ValueError, match="reference_points"):
        module(query, ref[:, :, :2], x, SHAPES)
    with pytest.raises(ValueError, match="2 or 4"):
        module(query, torch.rand(2, 4, 3, 3), x, SHAPES)
    with pytest.raises(ValueError, match="input_padding_mask"):
        module(query, ref, x, SHAPES, input_padding_mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="level_start_index"):
        module(query, ref, x, SHAPES, torch.tensor([0, 31, 39]))
