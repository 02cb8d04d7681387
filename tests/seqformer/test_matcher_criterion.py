"""Matcher costs on hand cases, criterion behaviour, top-k selection (docs/reference/vis.md §3.4, §3.5, §3.8)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from vidseg_common.errors import DataError
from vidseg_seqformer.criterion import SetCriterion
from vidseg_seqformer.inference import select_topk
from vidseg_seqformer.matcher import SequenceMatcher, focal_class_cost
from vidseg_seqformer.model import SeqFormer


def test_focal_class_cost_hand_value() -> None:
    """p = 0.5: pos − neg = α·0.25·ln2 − (1−α)·0.25·ln2 = −0.125·ln 2."""
    cost = focal_class_cost(torch.full((1, 3), 0.5), torch.tensor([2]))
    torch.testing.assert_close(cost, torch.tensor([[-0.125 * math.log(2)]]), atol=1e-6, rtol=1e-5)


def test_matcher_hand_case() -> None:
    """Two queries, two instances over T=2 frames: the boxes decide the (crossed) assignment; costs by hand."""
    matcher = SequenceMatcher(cost_class=0.0, cost_bbox=1.0, cost_giou=0.0)
    a = torch.tensor([[0.25, 0.25, 0.2, 0.2], [0.3, 0.25, 0.2, 0.2]])
    b = torch.tensor([[0.75, 0.75, 0.2, 0.2], [0.7, 0.75, 0.2, 0.2]])
    pred = torch.stack([b, a], 1)[None]  # (B=1, T=2, Q=2, 4): query 0 follows b, query 1 follows a
    targets = [{"labels": torch.tensor([1, 2]), "boxes": torch.stack([a, b])}]
    (q, g), = matcher(torch.zeros(1, 2, 3), pred, targets)
    assert q.tolist() == [0, 1] and g.tolist() == [1, 0]
    cost = matcher.cost_matrix(torch.zeros(2, 3), pred[0].transpose(0, 1), targets[0]["labels"], targets[0]["boxes"])
    # L2 over the concatenated 4T vector: query 0 (b) vs instance 0 (a): Δ(cx, cy) = (0.5, 0.5) then (0.4, 0.5)
    expected = torch.sqrt(torch.tensor(0.5**2 * 2 + 0.4**2 + 0.5**2))
    torch.testing.assert_close(cost[0, 0], expected)
    torch.testing.assert_close(cost[0, 1], torch.tensor(0.0))


def test_matcher_giou_term_is_mean_over_frames() -> None:
    matcher = SequenceMatcher(cost_class=0.0, cost_bbox=0.0, cost_giou=1.0)
    box = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])  # (T, 4)
    far = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.1, 0.2]])  # IoU 1 then 0.5 → mean GIoU 0.75
    cost = matcher.cost_matrix(torch.zeros(1, 2), box[None], torch.tensor([1]), far[None])
    torch.testing.assert_close(cost, torch.tensor([[-0.75]]))


def test_criterion_rejects_out_of_range_labels(tiny_model: SeqFormer, make_target: Callable) -> None:
    criterion = SetCriterion(SequenceMatcher(), num_classes=5)
    out = tiny_model(torch.rand(1, 2, 3, 64, 64))
    target = make_target([7], 2, (64, 64))
    with pytest.raises(DataError, match="num_classes"):
        criterion(out, [target], lambda layer, b, q: tiny_model.predict_masks(out, layer, b, q))


def test_loss_names_and_decrease_on_tiny_batch(tiny_model: SeqFormer, make_target: Callable) -> None:
    torch.manual_seed(0)
    criterion = SetCriterion(SequenceMatcher(), num_classes=5)
    frames = torch.rand(2, 2, 3, 64, 64)
    targets = [make_target([1, 3], 2, (64, 64), seed=1), make_target([2], 2, (64, 64), seed=2)]
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-3)
    history = []
    for _ in range(8):
        out = tiny_model(frames)
        losses = criterion(out, targets, lambda layer, b, q, out=out: tiny_model.predict_masks(out, layer, b, q))
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(float(losses["loss"].detach()))
    terms = ("ce", "bbox", "giou", "mask", "dice")
    assert set(losses) == {"loss"} | {f"loss/{t}" for t in terms} | {f"loss/{t}/aux0" for t in terms}
    assert "loss/ce/aux1" not in losses  # the last of the two layers is the final one, without aux suffix
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.8 * history[0]


def test_select_topk_over_query_class_pairs() -> None:
    logits = torch.tensor([[5.0, 4.0, -9.0], [-9.0, -9.0, 3.0]])
    scores, queries, labels = select_topk(logits, k=3)
    assert queries.tolist() == [0, 0, 1] and labels.tolist() == [0, 1, 2]  # query 0 appears with two classes
    torch.testing.assert_close(scores, torch.tensor([5.0, 4.0, 3.0]).sigmoid())
