"""TripleSparseConv2d's inference path (eval, no autograd) = its autograd path: outputs, decisions, statistics.

The autograd path (``eval()`` with grad enabled: ``argmax`` decisions, ``vidseg::sparse_conv2d``, reuse copy)
is the reference here; the inference path decides by elementwise comparisons, skips the convolution when
nothing is computed, gathers only the computed positions (one GEMM) or runs dense above ``dense_above``.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from vidseg_common.ops.sparse_conv2d import conv_output_size, sparse_conv2d_into, sparse_conv2d_reference
from vidseg_common.ops.sparse_conv_gates import first_argmax, fold_gate_conv2d, gate_conv2d, triple_decisions
from vidseg_common.ops.triple_sparse_conv import COMPUTE, TripleSparseConv2d

pytestmark = pytest.mark.usefixtures("one_thread")


# gate biases (skip, reuse, compute): nothing computed, a few positions (gather path), > dense_above (dense path),
# everything reused
BIASES = [(0.0, 0.0, -1e4), (0.0, 0.0, -12.0), (0.0, 0.0, 3.0), (-1e4, 1e4, -1e4)]
CONVS = [dict(in_channels=6, out_channels=5, kernel_size=3, padding=1),
         dict(in_channels=6, out_channels=4, kernel_size=3, stride=2, padding=1, bias=False),
         dict(in_channels=5, out_channels=7, kernel_size=1),
         dict(in_channels=4, out_channels=3, kernel_size=3, padding=0)]
CONV_IDS = ["3x3", "3x3s2", "1x1", "3x3p0"]


def _pair(gate_bias: tuple[float, float, float], **conv) -> tuple[TripleSparseConv2d, TripleSparseConv2d]:
    """Two eval layers with the same weights (gate scaled so that the decisions vary over the map)."""
    layer = TripleSparseConv2d(**conv).eval()
    with torch.no_grad():
        layer.gate.weight.mul_(20.0)
        layer.gate.bias.copy_(torch.tensor(gate_bias))
    return layer, copy.deepcopy(layer)


def _autograd_path(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        return layer(x).detach()


@pytest.mark.parametrize("conv", CONVS, ids=CONV_IDS)
@pytest.mark.parametrize("gate_bias", BIASES, ids=["none", "few", "dense", "reuse"])
@pytest.mark.parametrize("batch", [1, 2])
def test_inference_path_matches_autograd_path(conv: dict, gate_bias: tuple[float, float, float], batch: int) -> None:
    fast, ref_layer = _pair(gate_bias, **conv)
    frames = torch.randn(4, batch, conv["in_channels"], 12, 14)
    for x in frames:
        ref = _autograd_path(ref_layer, x)
        with torch.no_grad():
            out = fast(x)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        assert (fast.last_gate is None) == (ref_layer.last_gate is None)
        if ref_layer.last_gate is not None:
            assert torch.equal(fast.last_gate, ref_layer.last_gate.detach())  # the argmax decisions
    assert fast.statistics() == ref_layer.statistics()
    split = fast.statistics()
    if gate_bias[2] == -12.0:  # the gather path really ran on some positions (and not on all)
        assert 0 < split["compute_fraction"] < fast.dense_above
    if gate_bias[2] == 3.0:  # the dense-then-select path ran
        assert split["compute_fraction"] > fast.dense_above
    if gate_bias[1] > 0:
        assert split["reuse_fraction"] == 1.0


def test_training_and_autograd_never_take_the_inference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TripleSparseConv2d(3, 4, 3, padding=1)
    monkeypatch.setattr(TripleSparseConv2d, "sparse_inference", lambda self, x: pytest.fail("inference path ran"))
    x0, x1 = torch.randn(2, 1, 3, 8, 8)
    for mode in (True, False):  # training; eval with autograd on
        layer.train(mode)
        layer.reset()
        layer(x0)
        out = layer(x1)
        out.sum().backward()
        assert layer.gate.weight.grad is not None or not mode
    layer.train()
    layer.reset()
    with torch.no_grad():  # training mode without autograd: still the Gumbel path
        layer(x0)
        layer(x1)


def test_stacked_layers_match_autograd_path() -> None:
    """A small conv stack over several frames: per-layer errors do not build up beyond tolerance."""
    torch.manual_seed(0)
    net = nn.Sequential(
        TripleSparseConv2d(3, 8, 3, padding=1), nn.ReLU(),
        TripleSparseConv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        TripleSparseConv2d(8, 6, 1), nn.ReLU(),
        TripleSparseConv2d(6, 4, 3, padding=2, dilation=2),
    ).eval()
    layers = [m for m in net if isinstance(m, TripleSparseConv2d)]
    with torch.no_grad():
        for i, layer in enumerate(layers):
            layer.gate.weight.mul_(30.0)
            layer.gate.bias[2] -= (3.0, 12.0, 0.0, 6.0)[i]
    ref_net = copy.deepcopy(net)
    frames = torch.randn(5, 2, 3, 16, 20, generator=torch.Generator().manual_seed(1))
    for x in frames:
        ref = _autograd_path(ref_net, x)
        with torch.no_grad():
            out = net(x)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(layers, [m for m in ref_net if isinstance(m, TripleSparseConv2d)]):
        assert a.pixel_counts == b.pixel_counts
    fractions = [layer.statistics()["compute_fraction"] for layer in layers]
    assert any(0 < f < layers[0].dense_above for f in fractions) and any(f > layers[0].dense_above for f in fractions)


def test_decisions_and_argmax_follow_torch_argmax_with_ties() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randint(0, 3, (2, 3, 9, 11), generator=gen).float()  # many ties
    compute, reuse = triple_decisions(logits)
    choice = logits.argmax(1)
    assert torch.equal(compute, choice == COMPUTE) and torch.equal(reuse, choice == 1)
    probs = torch.randint(0, 4, (4, 7, 5), generator=gen).float()
    assert torch.equal(first_argmax(probs), probs.argmax(0))
    assert torch.equal(first_argmax(probs[:1]), torch.zeros(7, 5, dtype=torch.long))


GATE_CONVS = [*CONVS, dict(in_channels=4, out_channels=3, kernel_size=(3, 1), padding=(1, 0), dilation=2)]


@pytest.mark.parametrize("conv", GATE_CONVS, ids=[*CONV_IDS, "3x1d2"])
def test_fold_gate_logits_match_gate_conv(conv: dict) -> None:
    layer, _ = _pair((0.1, -0.2, 0.3), **conv)
    prev, x = torch.randn(2, 2, conv["in_channels"], 12, 14)
    with torch.no_grad():
        folded = fold_gate_conv2d([prev, x], layer.gate)
        torch.testing.assert_close(folded, gate_conv2d([prev, x], layer.gate), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(folded, layer.gate(torch.cat([prev, x], 1)), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_sparse_conv2d_into_writes_only_the_mask(layout: str) -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 9, 8, generator=gen, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(7, generator=gen, dtype=torch.float64)
    stride, padding, dilation = [2, 1], [1, 2], [1, 2]
    h_out, w_out = (conv_output_size(s, 3, stride[i], padding[i], dilation[i]) for i, s in enumerate((9, 8)))
    mask = torch.rand(2, h_out, w_out, generator=gen) < 0.3
    before = torch.randn(2, 7, h_out, w_out, generator=gen, dtype=torch.float64)
    out = before.clone() if layout == "contiguous" else before.contiguous(memory_format=torch.channels_last)
    assert sparse_conv2d_into(x, weight, bias, mask, stride, padding, dilation, out) is out
    expected = torch.where(mask[:, None], sparse_conv2d_reference(x, weight, bias, mask, stride, padding, dilation), before)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
