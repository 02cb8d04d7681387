"""VisTR criterion: normalisation by all instance-frames, exact zero box loss for perfect boxes, mask loss on the
last layer only, and the loss decreasing when fitting a tiny batch."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.errors import DataError
from vidseg_defvistr.criterion import SetCriterion
from vidseg_defvistr.matcher import InstanceSequenceMatcher
from vidseg_defvistr.model import DeformableVisTR


def _criterion(t: int, k: int = 4) -> SetCriterion:
    return SetCriterion(k, InstanceSequenceMatcher(t))


def test_box_losses_normalised_by_all_instance_frames() -> None:
    """One target on T=2 frames, absent on frame 1: L1 sums the one valid frame and divides by G·T = 2."""
    crit = _criterion(2)
    tgt_box = torch.tensor([0.5, 0.5, 0.2, 0.2])
    target = {"labels": torch.tensor([1]), "boxes": torch.stack([tgt_box, torch.zeros(4)])[None],
              "valid": torch.tensor([[True, False]]), "masks": torch.zeros(1, 2, 8, 8, dtype=torch.bool)}
    logits = torch.zeros(1, 2, 5)
    pred = torch.tensor([[[0.6, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]]])
    l1, giou = crit.loss_boxes(pred, [target], crit.matcher({"pred_logits": logits, "pred_boxes": pred}, [target]), 2.0)
    assert l1.item() == pytest.approx(0.1 / 2, rel=1e-5)
    # boxes [0.4,0.6]x[0.4,0.6] vs [0.5,0.7]x[0.4,0.6]: IoU 0.02/0.06, hull = union → GIoU = IoU
    assert giou.item() == pytest.approx((1 - 1 / 3) / 2, rel=1e-4)


def test_perfect_boxes_give_zero_box_loss_and_mask_loss_is_last_layer_only(make_targets) -> None:
    crit = _criterion(2)
    targets = make_targets(1, 2, 16, 16, num_classes=4)
    target = targets[0]
    boxes = target["boxes"].transpose(0, 1).reshape(1, 4, 4)  # frame-major, N = 2 slots = the 2 targets
    logits = torch.zeros(1, 4, 5)
    masks = torch.zeros(1, 4, 4, 4, requires_grad=True)
    outputs = {"pred_logits": logits, "pred_boxes": boxes, "pred_masks": masks,
               "aux_outputs": [{"pred_logits": logits, "pred_boxes": boxes}]}
    losses = crit(outputs, targets)
    assert losses["loss/bbox"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["loss/giou"].item() == pytest.approx(0.0, abs=1e-5)
    assert "loss/ce/aux0" in losses and "loss/bbox/aux0" in losses and "loss/mask/aux0" not in losses
    assert "loss/mask" in losses and "loss/dice" in losses
    expected_total = sum(v.detach() for k, v in losses.items() if k != "loss")
    assert losses["loss"].item() == pytest.approx(float(expected_total), rel=1e-6)


def test_label_out_of_range_is_an_error() -> None:
    crit = _criterion(1)
    target = {"labels": torch.tensor([4]), "boxes": torch.rand(1, 1, 4), "valid": torch.ones(1, 1, dtype=torch.bool),
              "masks": torch.ones(1, 1, 4, 4, dtype=torch.bool)}
    outputs = {"pred_logits": torch.zeros(1, 2, 5), "pred_boxes": torch.rand(1, 2, 4)}
    with pytest.raises(DataError, match="raise num_classes"):
        crit(outputs, [target])


def test_loss_decreases_on_a_tiny_batch(tiny_net_config: dict, make_targets) -> None:
    torch.manual_seed(0)
    t, k = 2, 4
    # backbone frozen (cheap on 2 shared cores): the transformer and heads must fit the batch on their own
    model = DeformableVisTR(num_classes=k, num_frames=t, num_instances=3, frozen_backbone=[""], **tiny_net_config)
    crit = SetCriterion(k, InstanceSequenceMatcher(t))
    frames = torch.rand(1, t, 3, 32, 32)
    targets = make_targets(1, t, 32, 32, num_classes=k)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(8):
        loss = crit(model(frames), targets)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert all(torch.isfinite(torch.tensor(history)))
    assert min(history[-2:]) < 0.85 * history[0], history
