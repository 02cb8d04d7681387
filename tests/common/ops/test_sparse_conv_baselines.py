"""Static (dynconv-style) and residual (skip-conv-style) sparse conv baselines of SpVOS Table I."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv_baselines import ResidualSparseConv2d, StaticSparseConv2d
from vidseg_common.ops.sparse_conv_gates import binary_gumbel_gate

pytestmark = pytest.mark.usefixtures("one_thread")


def _make(cls, dense_above: float = 1.0, **kwargs):
    torch.manual_seed(0)
    return cls(5, 7, 3, padding=1, dense_above=dense_above, **kwargs).double()


def _conv(x, layer, bias=True):
    return F.conv2d(x, layer.weight, layer.bias if bias else None, padding=1)


def test_one_channel_gates_give_spvos_baseline_parameter_budget():
    """Q+D layers with a C_in→1 same-kernel gate: +0.21 MiB (SpVOS Table I implies ≈ +0.22 MiB)."""
    net = torchvision.models.resnet50()
    convs = [c for layer in (net.layer1, net.layer2, net.layer3) for b in layer for c in (b.conv1, b.conv2, b.conv3)]
    convs += [nn.Conv2d(ci, co, 3, padding=1) for ci, co in [(1024, 512), (512, 512), (512, 256), (256, 256), (256, 256), (256, 256)]]
    for cls in (StaticSparseConv2d, ResidualSparseConv2d):
        mib = sum(p.numel() for c in convs for p in cls.from_conv(c).gate.parameters()) * 4 / 2**20
        assert round(mib, 2) == 0.21


@pytest.mark.parametrize("dense_above", [1.0, 0.0])
def test_static_eval_is_gate_masked_conv(dense_above):
    layer = _make(StaticSparseConv2d, dense_above).eval()
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    with torch.no_grad():
        out = layer(x)
        keep = layer.gate(x) >= 0
    assert 0 < keep.sum() < keep.numel()
    torch.testing.assert_close(out, keep * _conv(x, layer), rtol=1e-12, atol=1e-12)
    stats = layer.statistics()
    assert stats["compute_fraction"] == keep.double().mean().item()
    assert stats["skip_fraction"] == pytest.approx(1 - stats["compute_fraction"]) and stats["reuse_fraction"] == 0


def test_static_training_straight_through():
    layer = _make(StaticSparseConv2d).train()
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    out = layer(x)
    gate = layer.last_gate
    assert set(gate.detach().unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(out, gate * _conv(x, layer))
    out.sum().backward()
    assert layer.gate.weight.grad.abs().sum() > 0


def test_binary_gate_noise_statistics():
    """g1 − g2 is logistic noise, so P(hard = 1) = P(logit + g1 − g2 ≥ 0) = sigmoid(logit), whatever τ."""
    torch.manual_seed(0)
    logits = torch.full((1, 1, 200, 200), 0.8, dtype=torch.float64)
    frac = binary_gumbel_gate(logits, tau=0.5, noise=True).mean().item()
    assert frac == pytest.approx(torch.sigmoid(torch.tensor(0.8)).item(), abs=0.01)


def test_residual_with_all_gates_open_equals_dense_conv():
    """Linearity: z_t = z_{t−1} + conv(x_t − x_{t−1}) = conv(x_t) when every position is updated."""
    layer = _make(ResidualSparseConv2d).eval()
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.bias.fill_(1.0)
        for x in torch.randn(4, 2, 5, 7, 6, dtype=torch.float64):
            torch.testing.assert_close(layer(x), _conv(x, layer), rtol=1e-10, atol=1e-10)
    assert layer.statistics()["compute_fraction"] == 1.0


@pytest.mark.parametrize("dense_above", [1.0, 0.0])
def test_residual_eval_accumulates(dense_above):
    layer = _make(ResidualSparseConv2d, dense_above, gate_bias_init=0.0).eval()
    frames = torch.randn(3, 2, 5, 9, 8, dtype=torch.float64)
    with torch.no_grad():
        z = layer(frames[0])
        torch.testing.assert_close(z, _conv(frames[0], layer))
        for prev, x in itertools.pairwise(frames):
            gate = layer.gate((x - prev).abs()) >= 0
            expected = z + gate * _conv(x - prev, layer, bias=False)
            z = layer(x)
            torch.testing.assert_close(z, expected, rtol=1e-12, atol=1e-12)
    stats = layer.statistics()
    assert 0 < stats["reuse_fraction"] < 1 and stats["skip_fraction"] == 0
    layer.reset()
    with torch.no_grad():
        torch.testing.assert_close(layer(frames[2]), _conv(frames[2], layer))


def test_residual_training_and_defaults():
    layer = _make(ResidualSparseConv2d).train()
    assert layer.tau == pytest.approx(2 / 3) and layer.gate.bias.item() == pytest.approx(0.6)
    x0, x1 = torch.randn(2, 1, 5, 6, 6, dtype=torch.float64)
    z0 = layer(x0)
    z1 = layer(x1)
    torch.testing.assert_close(z1, z0 + layer.last_gate * _conv(x1 - x0, layer, bias=False))
    z1.sum().backward()
    assert layer.gate.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="reset"):
        layer(torch.randn(1, 5, 5, 6, dtype=torch.float64))
