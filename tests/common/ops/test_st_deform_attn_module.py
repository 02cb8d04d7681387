"""Tests of the ``STDeformAttn`` module (volume mode = paper, frames_as_levels = released code; docs/reference/vis.md §2.7–2.9)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidseg_common.ops.ms_deform_attn_module import MSDeformAttn, grid_offset_directions
from vidseg_common.ops.st_deform_attn_module import STDeformAttn


def randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)


def inputs(n, lq, c, s, n_levels, ref_dims=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(n, lq, c, generator=gen, dtype=torch.float64)
    x = torch.randn(n, s, c, generator=gen, dtype=torch.float64)
    ref = torch.rand(n, lq, n_levels, ref_dims, generator=gen, dtype=torch.float64)
    return query, ref, x


def paper_forward(module, query, ref, x, t, h, w, mask=None):
    """Eq. 2 with a single level, written out with a 5-D grid_sample (trilinear, align_corners=False)."""
    n, lq, c = query.shape
    m, k = module.n_heads, module.n_points
    value = F.linear(x, module.value_proj.weight, module.value_proj.bias)
    if mask is not None:
        value = value.masked_fill(mask[..., None], 0)
    vol = value.view(n, t, h, w, m, c // m).permute(0, 4, 5, 1, 2, 3).reshape(n * m, c // m, t, h, w)
    off = F.linear(query, module.sampling_offsets.weight, module.sampling_offsets.bias).view(n, lq, m, k, 3)
    a = (
        F.linear(query, module.attention_weights.weight, module.attention_weights.bias)
        .view(n, lq, m, k)
        .softmax(-1)
    )
    loc = ref[:, :, None, 0, None, :] + off / torch.tensor([w, h, t], dtype=query.dtype)
    grid = (2 * loc - 1).transpose(1, 2).reshape(n * m, 1, lq, k, 3)
    s = F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[
        :, :, 0
    ]  # (N·M, D, Lq, K)
    out = (s * a.transpose(1, 2).reshape(n * m, 1, lq, k)).sum(-1).view(n, c, lq).transpose(1, 2)
    return F.linear(out, module.output_proj.weight, module.output_proj.bias)


def test_defaults_and_init():
    module = STDeformAttn()
    assert (module.d_model, module.n_heads, module.n_points, module.n_levels) == (384, 8, 32, 1)
    bias = module.sampling_offsets.bias.view(8, 1, 32, 3)
    dirs = grid_offset_directions(8)
    for k in (0, 5, 31):
        torch.testing.assert_close(bias[:, 0, k, :2], (k + 1) * dirs)
    assert bias[..., 2].abs().sum() == 0  # temporal offsets start at 0 (our documented choice)
    assert module.attention_weights.weight.abs().sum() == 0 and module.attention_weights.bias.abs().sum() == 0


def test_volume_mode_matches_paper_equation():
    t, h, w = 3, 4, 5
    module = STDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=4).double()
    randomise(module)
    query, ref, x = inputs(2, 6, 8, t * h * w, 1)
    mask = torch.zeros(2, t * h * w, dtype=torch.bool)
    mask[1, -7:] = True
    out = module(query, ref, x, [(t, h, w)], input_padding_mask=mask)
    torch.testing.assert_close(
        out, paper_forward(module, query, ref, x, t, h, w, mask), rtol=1e-10, atol=1e-12
    )


def test_volume_t1_without_temporal_offsets_equals_msdeformattn():
    shapes2 = [(4, 5), (2, 3)]
    ms = MSDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=3).double()
    st = STDeformAttn(d_model=8, n_levels=2, n_heads=2, n_points=3).double()
    randomise(ms, seed=3)
    with torch.no_grad():
        for name in ("attention_weights", "value_proj", "output_proj"):
            getattr(st, name).load_state_dict(getattr(ms, name).state_dict())
        w3 = st.sampling_offsets.weight.view(2, 2, 3, 3, 8)
        b3 = st.sampling_offsets.bias.view(2, 2, 3, 3)
        w3[..., :2, :] = ms.sampling_offsets.weight.view(2, 2, 3, 2, 8)
        w3[..., 2, :] = 0
        b3[..., :2] = ms.sampling_offsets.bias.view(2, 2, 3, 2)
        b3[..., 2] = 0
    query, ref2, x = inputs(2, 5, 8, 26, 2, ref_dims=2, seed=1)
    ref3 = torch.cat([ref2, torch.full_like(ref2[..., :1], 0.5)], -1)
    expected = ms(query, ref2, x, shapes2)
    torch.testing.assert_close(st(query, ref3, x, [(1, 4, 5), (1, 2, 3)]), expected, rtol=1e-10, atol=1e-12)


def test_frames_as_levels_equals_msdeformattn_with_frames_as_levels():
    """Released DefVIS encoder: MSDeformAttn with T levels and the query's own (x, y) in every frame."""
    t, h, w = 3, 2, 4
    st = STDeformAttn(
        d_model=8, n_levels=1, n_heads=2, n_points=2, frames_as_levels=True, n_frames=t
    ).double()
    ms = MSDeformAttn(d_model=8, n_levels=t, n_heads=2, n_points=2).double()
    torch.testing.assert_close(st.sampling_offsets.bias, ms.sampling_offsets.bias)  # same grid init
    randomise(st, seed=4)
    ms.load_state_dict(st.state_dict())
    query, ref, x = inputs(1, 4, 8, t * h * w, 1, seed=2)
    expected = ms(query, ref[..., :2].expand(-1, -1, t, -1), x, [(h, w)] * t)
    torch.testing.assert_close(st(query, ref, x, [(t, h, w)]), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(st(query, ref[..., :2], x, [(t, h, w)]), expected, rtol=1e-10, atol=1e-12)


def test_gradients_reach_every_parameter():
    module = STDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=3)
    randomise(module, seed=5)
    query, ref, x = (a.float() for a in inputs(1, 4, 8, 2 * 3 * 3, 1))
    module(query, ref, x, [(2, 3, 3)]).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        STDeformAttn(d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="n_frames"):
        STDeformAttn(d_model=8, n_heads=2, frames_as_levels=True)
    module = STDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=2)
    query, ref, x = inputs(1, 4, 8, 18, 1)
    module = module.double()
    with pytest.raises(ValueError, match="levels"):
        module(query, ref, x, [(2, 3, 3), (1, 1, 1)])
    with pytest.raises(ValueError, match="reference_points"):
        module(query, ref[..., :2], x, [(2, 3, 3)])
    with pytest.raises(ValueError, match="sum to"):
        module(query, ref, x, [(2, 3, 2)])
    fal = STDeformAttn(d_model=8, n_heads=2, n_points=2, frames_as_levels=True, n_frames=2).double()
    with pytest.raises(ValueError, match="T=2"):
        fal(query, ref, x, [(3, 3, 2)])
