"""Dice, bootstrapped CE (STCN schedule), OHEM CE (TDNet rule) and the checked Hungarian solver."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from vidseg_common.models.losses import BootstrappedCE, OhemCrossEntropy, bootstrap_fraction, dice_loss
from vidseg_common.models.matcher import hungarian_match


def test_dice_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0], [10.0, -10.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.sigmoid(logits)
    expected = 1 - (2 * (p * targets).sum(1) + 1) / (p.sum(1) + targets.sum(1) + 1)
    torch.testing.assert_close(dice_loss(logits, targets), expected)
    assert dice_loss(torch.tensor([[50.0, -50.0]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


def test_bootstrap_schedule_of_stcn() -> None:
    assert bootstrap_fraction(19_999, 20_000, 70_000, 0.15) == 1.0
    assert bootstrap_fraction(45_000, 20_000, 70_000, 0.15) == pytest.approx(0.15 + 0.85 * 25_000 / 50_000)
    assert bootstrap_fraction(80_000, 20_000, 70_000, 0.15) == 0.15


def test_bootstrapped_ce_keeps_hardest_pixels_per_sample() -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    loss = BootstrappedCE(start_warm=0, end_warm=10, top_p=0.25)(logits, labels, iteration=100)
    pixel = F.cross_entropy(logits, labels, reduction="none").flatten(1)
    expected = torch.stack([row.sort(descending=True).values[:5].mean() for row in pixel]).mean()
    torch.testing.assert_close(loss, expected)
    plain = BootstrappedCE()(logits, labels, iteration=0)
    torch.testing.assert_close(plain, F.cross_entropy(logits, labels))


def test_ohem_rule() -> None:
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0, 0] = torch.tensor([5.0, -5.0, 0.0, 1.0])  # class-0 logit; class-1 logit is 0
    labels = torch.tensor([[[0, 0, 0, 255]]])
    pixel = F.cross_entropy(logits, labels, ignore_index=255, reduction="none").flatten()[:3]
    hard = pixel[pixel > -math.log(0.7)]
    torch.testing.assert_close(OhemCrossEntropy(0.7, n_min=1)(logits, labels), hard.mean())
    top2 = pixel.sort(descending=True).values[:2].mean()
    torch.testing.assert_close(OhemCrossEntropy(0.7, n_min=2)(logits, labels), top2)


def test_hungarian_matches_brute_force_and_rejects_nan() -> None:
    torch.manual_seed(1)
    cost = torch.rand(4, 3)
    rows, cols = hungarian_match(cost)
    best = min(
        sum(cost[r, c].item() for r, c in zip(perm_rows, range(3)))
        for perm_rows in itertools.permutations(range(4), 3)
    )
    assert cost[rows, cols].sum().item() == pytest.approx(best)
    assert hungarian_match(torch.empty(5, 0))[0].numel() == 0
    with pytest.raises(ValueError, match="NaN"):
        hungarian_match(torch.tensor([[float("nan")]]))
