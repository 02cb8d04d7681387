"""Parameter groups: backbone multiplier, name-pattern multipliers, no decay on norms/biases/embeddings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidseg_common.engine.param_groups import OptimizerConfig, build_param_groups


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.attn = nn.Module()
        self.attn.sampling_offsets = nn.Linear(4, 8)
        self.attn.value_proj = nn.Linear(4, 4)
        self.query_embed = nn.Embedding(5, 4)
        self.norm = nn.LayerNorm(4)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def _group_of(groups: list[dict], param: torch.Tensor) -> dict:
    matches = [g for g in groups if any(p is param for p in g["params"])]
    assert len(matches) == 1, "every trainable parameter must be in exactly one group"
    return matches[0]


def test_multipliers_and_decay_rules() -> None:
    net = Net()
    config = OptimizerConfig(lr=1e-4, weight_decay=0.05, backbone_lr_mult=0.1, lr_mults={"sampling_offsets": 0.1})
    groups = build_param_groups(net, config)

    conv_w = _group_of(groups, net.backbone[0].weight)
    assert conv_w["lr"] == pytest.approx(1e-5) and conv_w["weight_decay"] == 0.05
    bn_w = _group_of(groups, net.backbone[1].weight)
    assert bn_w["lr"] == pytest.approx(1e-5) and bn_w["weight_decay"] == 0.0
    offsets = _group_of(groups, net.attn.sampling_offsets.weight)
    assert offsets["lr"] == pytest.approx(1e-5) and offsets["weight_decay"] == 0.05
    assert _group_of(groups, net.attn.sampling_offsets.bias)["weight_decay"] == 0.0
    value = _group_of(groups, net.attn.value_proj.weight)
    assert value["lr"] == pytest.approx(1e-4) and value["weight_decay"] == 0.05
    assert _group_of(groups, net.query_embed.weight)["weight_decay"] == 0.0
    assert _group_of(groups, net.norm.weight)["weight_decay"] == 0.0

    grouped = sum(len(g["params"]) for g in groups)
    trainable = sum(1 for p in net.parameters() if p.requires_grad)
    assert grouped == trainable  # frozen parameters are left out, nothing is duplicated


def test_multipliers_compose_with_backbone() -> None:
    net = nn.Module()
    net.backbone = nn.Module()
    net.backbone.sampling_offsets = nn.Linear(2, 2)
    config = OptimizerConfig(lr=1.0, backbone_lr_mult=0.5, lr_mults={"sampling_offsets": 0.1})
    groups = build_param_groups(net, config)
    assert _group_of(groups, net.backbone.sampling_offsets.weight)["lr"] == pytest.approx(0.05)


def test_groups_work_in_an_optimizer() -> None:
    net = Net()
    groups = build_param_groups(net, OptimizerConfig(backbone_lr_mult=0.1))
    optimizer = torch.optim.AdamW(groups, lr=1e-4)
    assert {g["name"] for g in optimizer.param_groups} == {g["name"] for g in groups}
