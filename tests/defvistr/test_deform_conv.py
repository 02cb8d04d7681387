"""The mask head's DCN by sampling equals ``torchvision.ops.deform_conv2d`` (values and gradients), loads
torchvision ``DeformConv2d`` weights, and is counted by the FLOP counter like a convolution."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.ops import DeformConv2d, deform_conv2d

from vidseg_defvistr.deform_conv import SampledDeformConv2d, deform_conv2d_sampled


@pytest.mark.parametrize(("height", "width", "padding", "dilation", "offset_scale"),
                         [(7, 9, 1, 1, 3.0), (5, 6, 0, 1, 1.0), (6, 8, 2, 2, 6.0), (1, 4, 1, 1, 2.0)])
def test_matches_torchvision_values_and_gradients(height: int, width: int, padding: int, dilation: int,
                                                  offset_scale: float) -> None:
    """float64, random offsets reaching outside the map (zero reads, per-corner), with bias."""
    gen = torch.Generator().manual_seed(height * 100 + width)
    x = torch.randn(2, 3, height, width, dtype=torch.float64, generator=gen).requires_grad_()
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=gen).requires_grad_()
    bias = torch.randn(4, dtype=torch.float64, generator=gen).requires_grad_()
    h_out, w_out = height + 2 * padding - 2 * dilation, width + 2 * padding - 2 * dilation
    offset = (torch.randn(2, 18, h_out, w_out, dtype=torch.float64, generator=gen) * offset_scale).requires_grad_()
    expected = deform_conv2d(x, offset, weight, bias, padding=padding, dilation=dilation)
    got = deform_conv2d_sampled(x, offset, weight, bias, padding, dilation)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    grad_out = torch.randn(expected.shape, dtype=torch.float64, generator=gen)
    inputs = (x, offset, weight, bias)
    for g_ref, g_got in zip(torch.autograd.grad(expected, inputs, grad_out), torch.autograd.grad(got, inputs, grad_out)):
        torch.testing.assert_close(g_got, g_ref, rtol=1e-9, atol=1e-9)


def test_loads_torchvision_weights_and_rejects_bad_offsets() -> None:
    torch.manual_seed(0)
    ref = DeformConv2d(6, 5, 3, padding=1, bias=False)
    ours = SampledDeformConv2d(6, 5, 3, padding=1, bias=False)
    ours.load_state_dict(ref.state_dict())  # same names and shapes
    x, offset = torch.randn(3, 6, 8, 10), torch.randn(3, 18, 8, 10)
    torch.testing.assert_close(ours(x, offset), ref(x, offset), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="offset shape"):
        ours(x, offset[:, :16])


def test_flops_counted_like_a_convolution() -> None:
    """``2 · C_out · C_in · 9`` per output pixel, what FlopCounterMode gives the equivalent nn.Conv2d."""
    module = SampledDeformConv2d(12, 6, 3, padding=1)
    x, offset = torch.randn(4, 12, 10, 14), torch.randn(4, 18, 10, 14)
    with FlopCounterMode(display=False) as counter:
        module(x, offset)
    assert counter.get_total_flops() == 2 * 6 * 12 * 9 * 4 * 10 * 14
    conv = torch.nn.Conv2d(12, 6, 3, padding=1, bias=False)
    with FlopCounterMode(display=False) as conv_counter:
        conv(x)
    assert counter.get_total_flops() == conv_counter.get_total_flops()
