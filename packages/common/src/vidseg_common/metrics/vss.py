"""Semantic-segmentation mIoU with torchmetrics' own confusion-matrix class (docs/reference/vss.md §3.2).

Conventions: one ``C × C`` confusion matrix accumulated over the whole split (rows = GT, columns =
prediction), GT 255 ignored, ``IoU_c = TP / (TP + FP + FN)``; classes whose union is empty over the
whole split are reported as NaN and excluded from the mean (cityscapesScripts' NaN classes;
``MulticlassJaccardIndex(average='macro')`` does the same). Cityscapes: 19 trainIds; CamVid: 11 classes.
The confusion matrix is a ``sum`` state, so DDP sync is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassJaccardIndex

CITYSCAPES_NUM_CLASSES = 19
CAMVID_NUM_CLASSES = 11


class SegmentationIoU(MulticlassJaccardIndex):
    """Per-class IoU and mIoU over a whole split.

    Args:
        num_classes: 19 (Cityscapes trainIds) or 11 (CamVid).
        ignore_index: GT label excluded from the confusion matrix.
        class_names: optional names, used by :meth:`per_class`.
    """

    def __init__(
        self,
        num_classes: int = CITYSCAPES_NUM_CLASSES,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_classes=num_classes, average="none", ignore_index=ignore_index, **kwargs)
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Accumulate label maps.

        Args:
            preds: ``(B, H, W)`` predicted class ids (or ``(B, C, H, W)`` scores, arg-maxed).
            target: ``(B, H, W)`` GT class ids, ``ignore_index`` = void.
        """
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        super().update(preds, target)

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        """``{"mIoU": scalar, "IoU": (C,)}`` in float64; NaN for classes with an empty union."""
        confmat = self.confmat.double()
        tp = confmat.diagonal()
        union = confmat.sum(0) + confmat.sum(1) - tp
        iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
        return {"mIoU": iou.nanmean(), "IoU": iou}

    def per_class(self) -> dict[str, float]:
        """Class name → IoU (NaN if the class never occurs in GT or prediction)."""
        return dict(zip(self.class_names, self.compute()["IoU"].tolist()))
