"""FastTripleSparseConv2d's inference path gives common TripleSparseConv2d's outputs, decisions and statistics."""

from __future__ import annotations

import copy

import pytest
import torch

from vidseg_common.ops.triple_sparse_conv import TripleSparseConv2d
from vidseg_spvos.fast_triple import FastTripleSparseConv2d, first_argmax, triple_decisions
from vidseg_spvos.inference import segment_video
from vidseg_spvos.memory import l2_affinity, readout


def _pair(gate_bias: tuple[float, float, float], **conv) -> tuple[TripleSparseConv2d, FastTripleSparseConv2d]:
    common = TripleSparseConv2d(**conv).eval()
    with torch.no_grad():
        common.gate.weight.mul_(20.0)  # decisions vary over the map
        common.gate.bias.copy_(torch.tensor(gate_bias))
    fast = FastTripleSparseConv2d(**conv).eval()
    fast.load_state_dict(common.state_dict())
    return common, fast


# gate biases (skip, reuse, compute): nothing computed, a few positions (gather path), > dense_above (dense path),
# everything reused
BIASES = [(0.0, 0.0, -1e4), (0.0, 0.0, -12.0), (0.0, 0.0, 3.0), (-1e4, 1e4, -1e4)]
CONVS = [dict(in_channels=6, out_channels=5, kernel_size=3, padding=1),
         dict(in_channels=6, out_channels=4, kernel_size=3, stride=2, padding=1, bias=False),
         dict(in_channels=5, out_channels=7, kernel_size=1),
         dict(in_channels=4, out_channels=3, kernel_size=3, padding=0)]


@pytest.mark.parametrize("conv", CONVS, ids=["3x3", "3x3s2", "1x1", "3x3p0"])
@pytest.mark.parametrize("gate_bias", BIASES, ids=["none", "few", "dense", "reuse"])
@pytest.mark.parametrize("batch", [1, 2])
def test_layer_matches_common(conv: dict, gate_bias: tuple[float, float, float], batch: int) -> None:
    common, fast = _pair(gate_bias, **conv)
    frames = torch.randn(4, batch, conv["in_channels"], 12, 14)
    with torch.no_grad():
        for x in frames:
            ref, out = common(x), fast(x)
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
            assert (common.last_gate is None) == (fast.last_gate is None)
            if ref is not None and common.last_gate is not None:
                torch.testing.assert_close(fast.last_gate, common.last_gate)
    assert fast.statistics() == common.statistics()
    split = fast.statistics()
    if gate_bias[2] == -12.0:  # the gather path really ran on some positions (and not on all)
        assert 0 < split["compute_fraction"] < fast.dense_above
    if gate_bias[1] > 0:
        assert split["reuse_fraction"] == 1.0


def test_training_and_autograd_use_common_forward() -> None:
    common, fast = _pair((0.0, 0.0, 0.0), in_channels=3, out_channels=4, kernel_size=3, padding=1)
    common.train()
    fast.train()
    x0, x1 = torch.randn(2, 1, 3, 8, 8)
    torch.manual_seed(0)
    ref = [common(x0), common(x1)]
    torch.manual_seed(0)
    out = [fast(x0), fast(x1)]
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b)
    out[1].sum().backward()
    assert fast.gate.weight.grad is not None  # straight-through gate gradient as in common's layer


def test_network_logits_match_common_path(make_net) -> None:
    """Same query features, memory readout and decoder logits on a sparse frame with both layer classes."""
    fast = make_net(sparse_modules=["Q", "D"]).eval()
    with torch.no_grad():  # varied decisions, mostly few computed positions: all three execution paths run
        for layer in fast.sparse_layers.values():
            layer.gate.weight.mul_(30.0)
            layer.gate.bias[2] -= 3.0
    common = copy.deepcopy(fast)
    for layer in common.sparse_layers.values():
        assert type(layer) is FastTripleSparseConv2d
        layer.__class__ = TripleSparseConv2d
    gen = torch.Generator().manual_seed(0)
    frames = torch.randn(3, 1, 3, 32, 48, generator=gen)
    masks = torch.rand(1, 2, 32, 48, generator=gen)
    results = []
    for net in (common, fast):
        with torch.no_grad():
            feats = net.encode_key(frames[0])
            keys, values = feats["k16"][:, :, None], net.encode_value(frames[0], feats["f16"], masks)[:, :, :, None]
            net.decode(feats, readout(l2_affinity(keys, feats["k16"]), values, feats["v16"]))
            for t in (1, 2):  # sparse frames
                feats = net.encode_key(frames[t])
                logits, _ = net.segment(feats, keys, values, top_k=20)
        results.append((feats, logits))
    (ref_feats, ref_logits), (feats, logits) = results
    for key in ("f4", "f8", "f16", "k16", "v16"):
        torch.testing.assert_close(feats[key], ref_feats[key], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    fractions = [layer.statistics()["compute_fraction"] for layer in fast.sparse_layers.values()]
    assert any(0 < f < layer.dense_above for f in fractions) and any(f > layer.dense_above for f in fractions)
    for a, b in zip(fast.sparse_layers.values(), common.sparse_layers.values()):
        assert a.pixel_counts == b.pixel_counts


def test_segment_video_matches_common_path(make_net) -> None:
    fast = make_net(sparse_modules=["Q", "D"]).eval()
    common = copy.deepcopy(fast)
    for layer in common.sparse_layers.values():
        layer.__class__ = TripleSparseConv2d
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(7, 3, 32, 32, generator=gen)
    labels = torch.zeros(7, 32, 32, dtype=torch.long)
    labels[0, 8:20, 8:20] = 1
    assert torch.equal(segment_video(fast, video, labels, {1: 0}), segment_video(common, video, labels, {1: 0}))


def test_decisions_and_argmax_follow_torch_argmax_with_ties() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randint(0, 3, (2, 3, 9, 11), generator=gen).float()  # many ties
    compute, reuse = triple_decisions(logits)
    choice = logits.argmax(1)
    assert torch.equal(compute, choice == 2) and torch.equal(reuse, choice == 1)
    probs = torch.randint(0, 4, (4, 7, 5), generator=gen).float()
    assert torch.equal(first_argmax(probs), probs.argmax(0))


@pytest.mark.parametrize("conv", CONVS, ids=["3x3", "3x3s2", "1x1", "3x3p0"])
def test_fast_gate_logits_match_common_gate(conv: dict) -> None:
    common, fast = _pair((0.1, -0.2, 0.3), **conv)
    prev, x = torch.randn(2, 2, conv["in_channels"], 12, 14)
    with torch.no_grad():
        torch.testing.assert_close(fast.fast_gate_logits(prev, x), common.gate_logits(prev, x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.fast_gate_logits(prev, x), common.gate(torch.cat([prev, x], 1)),
                                   atol=1e-4, rtol=1e-4)
