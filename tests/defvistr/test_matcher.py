"""Instance-sequence matcher: hand-made costs and assignments, absent frames, the tgt_i[j] fix, errors."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.errors import DataError
from vidseg_defvistr.matcher import InstanceSequenceMatcher


def _logits_for(classes: list[list[int]], num_classes: int) -> torch.Tensor:
    """Frame-major logits ``(T·N, K+1)`` strongly predicting ``classes[t][i]``."""
    t, n = len(classes), len(classes[0])
    logits = torch.full((t * n, num_classes + 1), -10.0)
    for ti in range(t):
        for i in range(n):
            logits[ti * n + i, classes[ti][i]] = 10.0
    return logits


def test_cost_matrix_by_hand() -> None:
    """One prediction slot, one target, T=2 with the target absent on frame 1 (VisTR: label 0, zero box)."""
    matcher = InstanceSequenceMatcher(num_frames=2)
    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]))  # softmax gives these probabilities
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    tgt_boxes = torch.tensor([[[0.5, 0.5, 0.4, 0.2], [0.9, 0.9, 0.1, 0.1]]])  # frame-1 box is ignored (absent)
    valid = torch.tensor([[True, False]])
    cost = matcher.cost_matrix(logits, boxes, torch.tensor([1]), tgt_boxes, valid)
    cost_class = -(0.6 + 0.5) / 2  # p(class 1) on frame 0, p(class 0) on the absent frame 1
    cost_bbox = (0.2 + 0.0 + 0.0 + 0.0 + 0.5 + 0.5 + 0.2 + 0.2) / 8  # frame 1 against the zero box
    iou0 = (0.04 + 1e-6) / (0.08 + 1e-6)  # pred box inside target box: 0.2×0.2 over 0.4×0.2
    iou1 = 1e-6 / (0.04 + 1e-6)
    expected = 1 * cost_class + 5 * cost_bbox + 2 * -(iou0 + iou1) / 2
    assert cost.shape == (1, 1)
    assert cost.item() == pytest.approx(expected, rel=1e-5)


def test_assignment_and_valid_frames_of_the_assigned_target() -> None:
    """N=2 slots, G=2 targets, T=3; slot 0 fits target 1 (absent on frame 1), slot 1 fits target 0.

    VisTR's bug took the valid frames of target j=0 for the first pair (slot 0 ↔ target 1) and would
    supervise slot 0 on frame 1, where target 1 is absent; the fix uses target tgt_i[j] = 1's frames.
    """
    t = 3  # frames; N = 2 slots
    matcher = InstanceSequenceMatcher(num_frames=t)
    box_a = torch.tensor([0.25, 0.25, 0.2, 0.2])
    box_b = torch.tensor([0.75, 0.75, 0.3, 0.3])
    labels = torch.tensor([3, 2])
    valid = torch.tensor([[True, True, True], [True, False, True]])
    tgt_boxes = torch.stack([box_a.expand(t, 4), box_b.expand(t, 4)]).clone()
    tgt_boxes[1, 1] = 0
    logits = _logits_for([[2, 3], [0, 3], [2, 3]], num_classes=4)
    boxes = torch.stack([box_b, box_a, box_b, box_a, box_b, box_a])  # frame-major: slot 0 = b, slot 1 = a
    pred_idx, tgt_idx, frame_idx = matcher.match_video(logits, boxes, {"labels": labels, "boxes": tgt_boxes, "valid": valid})
    pairs = sorted(zip(pred_idx.tolist(), tgt_idx.tolist(), frame_idx.tolist()))
    # slot 0 ↔ target 1 on frames 0 and 2 (pred t·2+0); slot 1 ↔ target 0 on frames 0, 1, 2 (pred t·2+1)
    assert pairs == [(0, 1, 0), (1, 0, 0), (3, 0, 1), (4, 1, 2), (5, 0, 2)]


def test_more_targets_than_slots_is_an_error() -> None:
    matcher = InstanceSequenceMatcher(num_frames=1)
    target = {"labels": torch.tensor([1, 2, 3]), "boxes": torch.rand(3, 1, 4), "valid": torch.ones(3, 1, dtype=torch.bool)}
    with pytest.raises(DataError, match="3 target instances but the model has only 2"):
        matcher.match_video(torch.randn(2, 5), torch.rand(2, 4), target)


def test_no_targets_gives_empty_match() -> None:
    matcher = InstanceSequenceMatcher(num_frames=2)
    target = {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 2, 4), "valid": torch.zeros(0, 2, dtype=torch.bool)}
    pred_idx, tgt_idx, frame_idx = matcher.match_video(torch.randn(4, 5), torch.rand(4, 4), target)
    assert pred_idx.numel() == tgt_idx.numel() == frame_idx.numel() == 0
