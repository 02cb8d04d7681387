"""The VIS set-criterion contract helpers: loss keys, the key check, and the DDP-averaged box count."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.models import set_criterion
from vidseg_common.models.set_criterion import check_loss_dict, loss_key, num_target_boxes


def _target(instances: int, frames: int) -> dict[str, torch.Tensor]:
    return {"labels": torch.zeros(instances, dtype=torch.long), "valid": torch.zeros(instances, frames, dtype=torch.bool)}


def test_loss_keys() -> None:
    assert loss_key("ce") == "loss/ce"
    assert loss_key("giou", 0) == "loss/giou/aux0"
    zero = torch.tensor(0.0)
    check_loss_dict({"loss": zero, "loss/ce": zero, "loss/dice/aux12": zero})
    for bad in ({"loss/ce": zero}, {"loss": zero, "loss_ce": zero}, {"loss": zero, "loss/ce/aux": zero},
                {"loss": zero, "loss/focal": zero}, {"loss": zero, "aux0_loss_ce": zero}):
        with pytest.raises(ValueError):
            check_loss_dict(bad)
    with pytest.raises(ValueError, match="scalar"):
        check_loss_dict({"loss": torch.zeros(2)})


def test_num_target_boxes_counts_instances_or_instance_frames() -> None:
    targets = [_target(2, 3), _target(1, 3)]
    assert num_target_boxes(targets, torch.device("cpu")) == 3.0
    assert num_target_boxes(targets, torch.device("cpu"), per_frame=True) == 9.0
    assert num_target_boxes([_target(0, 3)], torch.device("cpu")) == 1.0  # clamped ≥ 1
    assert num_target_boxes([], torch.device("cpu"), per_frame=True) == 1.0


def test_num_target_boxes_is_averaged_over_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes: this one has 3 instances, the other 6 → 4.5 each; an empty batch everywhere → 1."""
    others = {"count": 6.0}

    def all_reduce(tensor: torch.Tensor) -> None:
        tensor += others["count"]

    monkeypatch.setattr(set_criterion.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(set_criterion.dist, "all_reduce", all_reduce)
    monkeypatch.setattr(set_criterion.dist, "get_world_size", lambda: 2)
    assert num_target_boxes([_target(2, 1), _target(1, 1)], torch.device("cpu")) == 4.5
    others["count"] = 0.0
    assert num_target_boxes([_target(0, 1)], torch.device("cpu")) == 1.0
    assert num_target_boxes([_target(1, 1)], torch.device("cpu")) == 1.0  # 0.5 clamped
