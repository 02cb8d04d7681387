"""Parameter counts: STCN (54.43 M) and the "Params" column of SpVOS Tables I–III.

The paper's "Params" are MiB of the fp32 state dict (parameters and BatchNorm buffers), rounded **up** to two
decimals: that reading reproduces the non-sparse 207.78 and every triple-sparse row exactly (docs/reference/vos.md §2.2, §2.6).
"""

from __future__ import annotations

import math

import pytest
import torch

from vidseg_spvos.model import SpVOSNet


def build(**kwargs) -> SpVOSNet:
    """The paper-size network on the meta device (shapes only: sizes are exact, construction is instant)."""
    with torch.device("meta"):
        return SpVOSNet(**kwargs)


def state_dict_mib(net: SpVOSNet) -> float:
    return sum(t.numel() * t.element_size() for t in net.state_dict().values()) / 2**20


def table_mib(net: SpVOSNet) -> float:
    return math.ceil(state_dict_mib(net) * 100 - 1e-9) / 100


def test_stcn_baseline_parameter_count() -> None:
    net = build(gate="none", sparse_modules=())
    count = sum(p.numel() for p in net.parameters())
    assert round(count / 1e6, 2) == 54.43  # STCN (hkchengrex/STCN model/network.py), docs/reference/vos.md §2.2
    parts = {name: sum(p.numel() for p in module.parameters()) / 1e6 for name, module in [
        ("key", net.key_encoder.backbone), ("value", net.value_encoder.backbone), ("fuser", net.value_encoder.fuser),
        ("key_proj", net.key_encoder.key_proj), ("key_comp", net.key_encoder.key_comp), ("decoder", net.decoder)]}
    assert {k: round(v, 2) for k, v in parts.items()} == {
        "key": 8.54, "value": 2.79, "fuser": 18.91, "key_proj": 0.59, "key_comp": 4.72, "decoder": 18.88}
    assert net.value_encoder.backbone.body.conv1.in_channels == 5
    assert table_mib(net) == 207.78  # Table I "Non-sparse"


@pytest.mark.parametrize(
    ("gate", "modules", "paper"),
    [
        ("triple", ["Q"], 208.48),  # Table III
        ("triple", ["D"], 208.36),
        ("triple", ["Q", "D"], 209.06),  # Tables I–III
        ("triple", ["Q", "D", "M"], 209.97),  # Table II "w/ M"
        ("triple", ["Q_all"], 208.92),  # Table III †
        ("triple", ["D_all"], 208.89),
        ("triple", ["Q_all", "D_all"], 210.03),
        ("static", ["Q"], 207.90),
        ("static", ["D"], 207.88),
        ("static", ["Q", "D", "M"], 208.15),
        ("residual", ["Q"], 207.90),
        ("residual", ["D"], 207.88),
        ("residual", ["Q", "D", "M"], 208.15),
    ],
)
def test_table_model_sizes(gate: str, modules: list[str], paper: float) -> None:
    assert table_mib(build(gate=gate, sparse_modules=modules)) == paper


@pytest.mark.parametrize("gate", ["static", "residual"])
def test_binary_baselines_q_plus_d_within_rounding(gate: str) -> None:
    # Tables I–III print 208.00 for static / residual Q+D; the 1-channel gate gives 207.99 (the Q, D and Q+D+M rows
    # match exactly, so the paper's baseline gate is this one; the 0.01 is the paper's rounding or a detail we lack).
    assert abs(state_dict_mib(build(gate=gate, sparse_modules=["Q", "D"])) - 208.00) < 0.015
