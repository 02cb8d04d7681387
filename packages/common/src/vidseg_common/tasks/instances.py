"""``VideoInstances``: the instance sequences of one video as tensors (detectron2's ``Instances`` idea, for video).

A VIS model's prediction and a VIS ground truth have the same shape: ``N`` sequences, each with a mask per
frame, a category and (for predictions) a score. Fields are aligned on dimension 0, so indexing with an
integer, a slice, a boolean mask or an index tensor selects sequences, and :meth:`cat` joins them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class VideoInstances:
    """``N`` instance sequences of a ``T``-frame video of size ``(H, W)``.

    Attributes:
        masks: ``(N, T, H, W) bool``.
        labels: ``(N,) long`` category ids.
        scores: ``(N,) float`` confidences (``None`` for ground truth).
        boxes: ``(N, T, 4)`` normalised ``(cx, cy, w, h)`` (optional).
        valid: ``(N, T) bool``: frames where the instance exists (optional; ground truth).
    """

    masks: Tensor
    labels: Tensor
    scores: Tensor | None = None
    boxes: Tensor | None = None
    valid: Tensor | None = None

    def __post_init__(self) -> None:
        if self.masks.ndim != 4:
            raise ValueError(f"VideoInstances.masks must be (N, T, H, W), got {tuple(self.masks.shape)}")
        num = self.masks.shape[0]
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None and value.shape[0] != num:
                raise ValueError(f"VideoInstances.{field.name} has {value.shape[0]} rows, masks have {num}")

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the masks."""
        return int(self.masks.shape[-2]), int(self.masks.shape[-1])

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> VideoInstances:
        if isinstance(index, int):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        if isinstance(index, Sequence):
            index = torch.as_tensor(index, dtype=torch.long)
        return VideoInstances(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                                 for f in fields(self)})

    def to(self, device: torch.device | str) -> VideoInstances:
        """The same instances on ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})

    @staticmethod
    def cat(items: Sequence[VideoInstances]) -> VideoInstances:
        """Concatenate sequences of the same video (a field must be present in all items or in none)."""
        if not items:
            raise ValueError("VideoInstances.cat needs at least one item")
        joined: dict[str, Any] = {}
        for f in fields(VideoInstances):
            values = [getattr(item, f.name) for item in items]
            present = [v is not None for v in values]
            if any(present) and not all(present):
                raise ValueError(f"VideoInstances.cat: field {f.name!r} is set in some items only")
            joined[f.name] = torch.cat(values) if all(present) else None
        return VideoInstances(**joined)

    @classmethod
    def from_target(cls, target: dict[str, Tensor]) -> VideoInstances:
        """A dataset target ``{"masks", "labels", "boxes"?, "valid"?}`` (see ``VISClipDataset``)."""
        return cls(masks=target["masks"].bool(), labels=target["labels"], boxes=target.get("boxes"),
                   valid=target.get("valid"))

    def as_dict(self) -> dict[str, Tensor]:
        """The set fields as a dict (the input of :class:`~vidseg_common.metrics.vis.VideoAP`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
