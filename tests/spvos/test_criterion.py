"""Sparsity loss (SpVOS Eq. 10–13) and dynconv's relaxation schedule (docs/reference/vos.md §2.6–2.7)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from vidseg_common.ops.triple_sparse_conv import TripleSparseConv2d
from vidseg_spvos.criterion import SparsityLoss, relaxed_bounds


def test_relaxation_schedule() -> None:
    # dynconv: both bounds start at t_s, relax cosine-squared, and reach [0, 1] after 33 % of training
    assert relaxed_bounds(0, 1000, 0.1) == pytest.approx((0.1, 0.1))
    assert relaxed_bounds(165, 1000, 0.1) == pytest.approx((0.05, 0.55))  # p = 0.5 (docs/reference/vos.md §2.7 example)
    assert relaxed_bounds(330, 1000, 0.1) == pytest.approx((0.0, 1.0), abs=1e-12)
    assert relaxed_bounds(900, 1000, 0.1) == pytest.approx((0.0, 1.0), abs=1e-12)
    lowers = [relaxed_bounds(s, 1000, 0.1)[0] for s in range(0, 400, 10)]
    assert all(a >= b for a, b in itertools.pairwise(lowers))


def _layers():
    a = TripleSparseConv2d(4, 8, 3, padding=1)  # c = 9·4·8 = 288
    b = TripleSparseConv2d(8, 2, 1)  # c = 1·8·2 = 16
    return {"a": a, "b": b}


def _gate(choice: torch.Tensor) -> torch.Tensor:
    return F.one_hot(choice, 3).permute(0, 3, 1, 2).float()


def test_loss_values_against_the_formulas() -> None:
    layers = _layers()
    choice_a = torch.tensor([[[2, 2], [0, 1]]])  # s_a = 0.5
    choice_b = torch.tensor([[[2, 2], [2, 2]]])  # s_b = 1.0
    gates = {"a": [_gate(choice_a)], "b": [_gate(choice_b)]}
    out = SparsityLoss(target=0.1, beta=2.0)(gates, layers, step=0, total_steps=100)
    layer = (0.5 - 0.1) ** 2 + (1.0 - 0.1) ** 2  # both bounds at t_s at step 0
    ratio = (288 * 2 + 16 * 4) / (288 * 4 + 16 * 4)
    assert out["layer"].item() == pytest.approx(layer)
    assert out["global"].item() == pytest.approx((ratio - 0.1) ** 2)
    assert out["sparsity"].item() == pytest.approx(layer + 2.0 * (ratio - 0.1) ** 2)
    late = SparsityLoss(target=0.1)(gates, layers, step=50, total_steps=100)  # bounds fully relaxed
    assert late["layer"].item() == 0.0
    cost = SparsityLoss(mode="cost")(gates, layers, step=0, total_steps=100)  # residual baseline
    assert cost["sparsity"].item() == pytest.approx(ratio)


def test_loss_reaches_the_gate_through_gumbel_softmax() -> None:
    conv = TripleSparseConv2d(4, 4, 3, padding=1).train()
    conv(torch.randn(1, 4, 8, 8))
    conv(torch.randn(1, 4, 8, 8))  # second frame: sparse, gate is straight-through
    out = SparsityLoss(0.1)({"c": [conv.last_gate]}, {"c": conv}, step=0, total_steps=10)
    out["sparsity"].backward()
    assert conv.gate.weight.grad is not None and conv.gate.weight.grad.abs().sum() > 0
    assert math.isfinite(out["sparsity"].item())
