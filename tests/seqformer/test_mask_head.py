"""Dynamic mask head (docs/reference/vis.md §3.3): 169 generated parameters, pixel relative coordinates, aligned up-sampling."""

from __future__ import annotations

import torch

from vidseg_seqformer.mask_head import DynamicMaskHead, aligned_bilinear


def test_num_generated_params_is_169() -> None:
    head = DynamicMaskHead(d_model=256)
    assert head.num_gen_params == 169  # 80 + 64 + 8 weights, 8 + 8 + 1 biases
    assert head.controller.layers[-1].out_features == 169
    assert sum(p.numel() for p in head.controller.parameters()) == 175_017  # "controller 0.175M" (R50 breakdown)


def test_relative_coordinates_are_raw_pixels() -> None:
    """With generated params that pass the x channel through, the output is ``centre_x·W − (8x + 4)``."""
    head = DynamicMaskHead(d_model=4, out_stride=8)
    offset = 1000.0  # keep values positive through the ReLUs
    w1 = torch.zeros(8, 10)
    w1[0, 0] = 1.0
    b1 = torch.zeros(8)
    b1[0] = offset
    w2 = torch.zeros(8, 8)
    w2[0, 0] = 1.0
    w3 = torch.zeros(1, 8)
    w3[0, 0] = 1.0
    params = torch.cat([w1.flatten(), w2.flatten(), w3.flatten(), b1, torch.zeros(8), torch.tensor([-offset])])
    last = head.controller.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(params)
    features = torch.rand(1, 2, 8, 3, 5)
    centres = torch.tensor([[[0.5, 0.25], [0.1, 0.9]]])  # (N=1, T=2, 2)
    out = head(torch.randn(1, 4), centres, features, image_size=(24, 40))
    xs = torch.arange(5) * 8 + 4.0
    expected_t0 = (0.5 * 40 - xs).expand(3, 5)
    expected_t1 = (0.1 * 40 - xs).expand(3, 5)
    torch.testing.assert_close(out[0, 0], expected_t0)
    torch.testing.assert_close(out[0, 1], expected_t1)


def test_aligned_bilinear_ramp() -> None:
    """CondInst's aligned_bilinear ×2 of a ramp 0..3: replicate-pad, align_corners resize, shift by one."""
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 2, 4)
    out = aligned_bilinear(ramp, 2)
    assert out.shape == (1, 1, 4, 8)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))
