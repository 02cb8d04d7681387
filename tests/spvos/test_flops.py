"""Table IV accounting: per-module executed conv FLOPs against torch's FLOP counter and the sparse layers' counts."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidseg_spvos.flops import ConvFlopCounter
from vidseg_spvos.inference import segment_video


def test_dense_counts_match_torch_flop_counter(make_net) -> None:
    net = make_net(gate="none", sparse_modules=()).eval()
    frames = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), ConvFlopCounter(net) as ours, FlopCounterMode(display=False) as reference:
        feats = net.encode_key(frames)
    assert ours.by_part["Q"] == reference.get_flop_counts()["Global"][torch.ops.aten.convolution]
    assert feats["f16"].shape[-1] == 4


def test_sparse_model_counts_executed_positions(make_net) -> None:
    net = make_net(sparse_modules=["Q", "D"]).eval()
    for layer in net.sparse_layers.values():  # bias the gates to "skip": most positions are not computed
        with torch.no_grad():
            layer.gate.bias.copy_(torch.tensor([4.0, 0.0, 0.0]))
    video = torch.randn(6, 3, 32, 32)
    labels = torch.zeros(6, 32, 32, dtype=torch.long)
    labels[0, 8:24, 8:24] = 1
    with ConvFlopCounter(net, set(net.sparse_layers)) as counter:
        segment_video(net, video, labels, {1: 0}, "mixed", mem_every=5)
    executed = sum(layer.executed_flops for layer in net.sparse_layers.values())
    dense = sum(layer.total_dense_flops for layer in net.sparse_layers.values())
    assert counter.selected == executed and counter.selected_dense == dense
    assert counter.selected < 0.5 * counter.selected_dense  # sparse frames 1–4 compute (almost) nothing
    assert counter.by_part["M"] == counter.dense_by_part["M"] > 0  # memory encoder untouched
    assert sum(counter.gate_by_part.values()) > 0
