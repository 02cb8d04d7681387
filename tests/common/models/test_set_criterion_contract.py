"""Both VIS criteria (Deformable VisTR, SeqFormer) honour the shared loss contract of
:mod:`vidseg_common.models.set_criterion`: keys ``loss``, ``loss/<term>``, ``loss/<term>/aux<l>``; every entry
weighted; ``loss`` the sum of the others. Random predictions, no network (cheap)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from vidseg_common.models.set_criterion import TERMS, check_loss_dict

T, K, B = 2, 4, 2
LossFn = Callable[[dict[str, float]], dict[str, Tensor]]


def _targets(size: int, per_clip: list[int], seed: int = 0) -> list[dict[str, Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    targets = []
    for count in per_clip:
        masks = torch.zeros(count, T, size, size, dtype=torch.bool)
        boxes = torch.zeros(count, T, 4)
        for g in range(count):
            y0, x0 = (int(v) for v in torch.randint(0, size // 2, (2,), generator=gen))
            masks[g, :, y0 : y0 + size // 3, x0 : x0 + size // 3] = True
            boxes[g] = torch.tensor([(x0 + size / 6) / size, (y0 + size / 6) / size, 1 / 3, 1 / 3])
        targets.append({"labels": torch.randint(0, K, (count,), generator=gen), "boxes": boxes, "masks": masks,
                        "valid": masks.flatten(2).any(2)})
    return targets


def _defvistr() -> tuple[LossFn, set[str]]:
    from vidseg_defvistr.criterion import SetCriterion
    from vidseg_defvistr.matcher import InstanceSequenceMatcher

    gen = torch.Generator().manual_seed(1)
    q = T * 3

    def layer() -> dict[str, Tensor]:
        return {"pred_logits": torch.randn(B, q, K + 1, generator=gen),
                "pred_boxes": torch.rand(B, q, 4, generator=gen) * 0.5 + 0.25}

    outputs = {**layer(), "pred_masks": torch.randn(B, q, 4, 4, generator=gen), "aux_outputs": [layer(), layer()]}
    targets = _targets(16, [2, 1])

    def run(weights: dict[str, float]) -> dict[str, Tensor]:
        return SetCriterion(K, InstanceSequenceMatcher(T), **{f"weight_{t}": w for t, w in weights.items()})(outputs, targets)

    keys = {f"loss/{t}" for t in TERMS} | {f"loss/{t}/aux{i}" for t in ("ce", "bbox", "giou") for i in (0, 1)}
    return run, keys


def _seqformer() -> tuple[LossFn, set[str]]:
    from vidseg_seqformer.criterion import SetCriterion
    from vidseg_seqformer.matcher import SequenceMatcher

    gen = torch.Generator().manual_seed(2)
    layers, q, size = 3, 5, 32
    outputs = {"pred_logits": [torch.randn(B, q, K, generator=gen) for _ in range(layers)],
               "pred_boxes": [torch.rand(B, T, q, 4, generator=gen) * 0.5 + 0.25 for _ in range(layers)]}
    mask_logits = torch.randn(layers, B, q, T, size // 4, size // 4, generator=gen)
    targets = _targets(size, [2, 1])

    def run(weights: dict[str, float]) -> dict[str, Tensor]:
        criterion = SetCriterion(SequenceMatcher(), K, **{f"weight_{t}": w for t, w in weights.items()})
        return criterion(outputs, targets, lambda layer, b, query: mask_logits[layer, b, query])

    keys = {f"loss/{t}" for t in TERMS} | {f"loss/{t}/aux{i}" for t in TERMS for i in (0, 1)}
    return run, keys


@pytest.mark.parametrize("paper", ["defvistr", "seqformer"])
def test_criterion_follows_the_loss_contract(paper: str) -> None:
    pytest.importorskip(f"vidseg_{paper}")
    run, expected_keys = {"defvistr": _defvistr, "seqformer": _seqformer}[paper]()
    weights = {"ce": 2.0, "bbox": 5.0, "giou": 3.0, "mask": 7.0, "dice": 0.5}
    losses = run(weights)
    check_loss_dict(losses)
    assert set(losses) == expected_keys | {"loss"}
    total = sum(float(v) for k, v in losses.items() if k != "loss")
    assert float(losses["loss"]) == pytest.approx(total, rel=1e-6)
    assert all(float(v) > 0 for v in losses.values())
    # entries are weighted: with unit weights every entry is divided by its term's weight
    unit = run(dict.fromkeys(weights, 1.0))
    assert set(unit) == set(losses)
    for key, value in losses.items():
        if key != "loss":
            torch.testing.assert_close(value, weights[key.split("/")[1]] * unit[key], rtol=1e-6, atol=0.0)
