"""Clip-consistent augmentation with albumentations 2.0.8 (docs/reference/ecosystem.md §6).

One ``A.Compose`` is applied with ``images=`` / ``masks=`` so every frame of a clip gets the same
geometric and photometric parameters (TDNet/STCN/VisTR all augment clip-consistently). Masks are
resized with nearest neighbour; padding writes ``mask_fill`` (255 = ignore for VOS/VSS label maps,
0 for VIS binary masks). Boxes are not transformed by albumentations: VIS datasets recompute them
from the augmented masks (:func:`masks_to_boxes_cxcywh`).

Worker seeding pitfall: a ``Compose`` keeps its own RNG, which forked DataLoader workers copy, so
all workers would draw identical crops. :func:`worker_init_fn` reseeds each worker's copy from
``torch.initial_seed()`` (different per worker and per epoch, reproducible under a fixed seed).

Not reproduced: STCN's extra per-frame ``RandomAffine``/jitter (a second per-frame Compose).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import get_worker_info

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AugmentedClip(NamedTuple):
    """What :meth:`ClipAugment.apply` returns."""

    frames: torch.Tensor
    """``(T, 3, H', W') float32``."""
    masks: np.ndarray | None
    """The masks with the frames' geometry."""
    content_size: tuple[int, int]
    """``(h, w)`` of the image content after the resize (or crop), before padding."""
    padded_size: tuple[int, int]
    """``(H', W')`` after padding to the stride multiple (the network input)."""


class ClipAugment:
    """Same transform for every frame of a clip, then normalisation and padding to a stride multiple.

    Args:
        train: enable the random parts (flip, crop, colour jitter).
        short_side: resize so the short side is this (a sequence = random choice per clip); ``None`` keeps the size.
        max_size: cap on the long side after the short-side resize, as DETR's ``RandomResize(..., max_size)``
            (``None``: no cap).
        crop_size: ``(h, w)`` of a ``RandomResizedCrop`` (train only); ``None``: no crop.
        crop_scale: area fraction range of the crop (STCN: ``(0.36, 1.0)``).
        crop_ratio: aspect-ratio range of the crop.
        hflip_prob: horizontal flip probability (train only).
        color_jitter: ``(brightness, contrast, saturation, hue)`` (STCN: ``(0.1, 0.03, 0.03, 0)``); ``None``: off.
        pad_divisor: pad bottom/right so H and W are multiples of this (the model stride); 1 = no padding.
        mask_fill: mask value written in padding.
        mean: normalisation mean (RGB, 0..1 scale).
        std: normalisation std.
        seed: seed of the Compose RNG (reseeded per worker by :func:`worker_init_fn`).
    """

    def __init__(
        self,
        train: bool = True,
        short_side: int | Sequence[int] | None = None,
        max_size: int | None = None,
        crop_size: tuple[int, int] | None = None,
        crop_scale: tuple[float, float] = (0.36, 1.0),
        crop_ratio: tuple[float, float] = (0.75, 1.3333333333333333),
        hflip_prob: float = 0.5,
        color_jitter: tuple[float, float, float, float] | None = (0.1, 0.03, 0.03, 0.0),
        pad_divisor: int = 1,
        mask_fill: int = 255,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int | None = None,
    ) -> None:
        ops: list[A.BasicTransform] = []
        self.crop_size = (int(crop_size[0]), int(crop_size[1])) if train and crop_size is not None else None
        self.short_sides = None if short_side is None else (
            [int(v) for v in short_side] if isinstance(short_side, Sequence) else [int(short_side)])
        self.max_size = max_size
        self.rng = np.random.default_rng(seed)
        if train and hflip_prob > 0:
            ops.append(A.HorizontalFlip(p=hflip_prob))
        if train and crop_size is not None:
            ops.append(A.RandomResizedCrop(size=tuple(crop_size), scale=crop_scale, ratio=crop_ratio,
                                           interpolation=cv2.INTER_CUBIC, mask_interpolation=cv2.INTER_NEAREST))
        if train and color_jitter is not None:
            b, c, s, h = color_jitter
            ops.append(A.ColorJitter(brightness=b, contrast=c, saturation=s, hue=h, p=1.0))
        ops.append(A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0))
        if pad_divisor > 1:
            ops.append(A.PadIfNeeded(min_height=None, min_width=None, pad_height_divisor=pad_divisor,
                                     pad_width_divisor=pad_divisor, position="top_left",
                                     border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=mask_fill))
        self.compose = A.Compose(ops, seed=seed)

    def set_random_seed(self, seed: int) -> None:
        """Reseed the Compose RNG and the resize RNG (called once per DataLoader worker)."""
        self.compose.set_random_seed(seed)
        self.rng = np.random.default_rng(seed)

    def _resize(self, frames: np.ndarray, masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Short side → ``short_side`` (random choice), long side capped at ``max_size`` (never enlarged by the cap)."""
        h, w = frames.shape[1:3]
        scale = 1.0
        if self.short_sides is not None:
            scale = self.short_sides[int(self.rng.integers(len(self.short_sides)))] / min(h, w)
        if self.max_size is not None and max(h, w) * scale > self.max_size:
            scale = self.max_size / max(h, w)
        size = (max(round(w * scale), 1), max(round(h * scale), 1))
        if size == (w, h):
            return frames, masks
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames])
        if masks is not None:
            masks = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST).reshape(size[1], size[0], *m.shape[2:])
                              for m in masks])
        return frames, masks

    def __call__(self, frames: np.ndarray, masks: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray | None]:
        """Augment a clip: :meth:`apply` without the geometry."""
        out = self.apply(frames, masks)
        return out.frames, out.masks

    def apply(self, frames: np.ndarray, masks: np.ndarray | None = None) -> AugmentedClip:
        """Augment a clip and say what the geometry became.

        Args:
            frames: ``(T, H, W, 3) uint8``.
            masks: ``(T, H, W)`` id maps or ``(T, H, W, N)`` per-instance channels, or ``None``.

        Returns:
            ``frames (T, 3, H', W') float32`` tensor, the masks with the same geometry (numpy), the content size
            (after the resize or crop, before padding) and the padded size ``(H', W')``.
        """
        empty_channels = masks is not None and masks.ndim == 4 and masks.shape[3] == 0
        if empty_channels:  # albumentations and cv2 need at least one channel
            masks = np.zeros((*masks.shape[:3], 1), dtype=np.uint8)
        frames, masks = self._resize(frames, masks)
        content = (int(frames.shape[1]), int(frames.shape[2])) if self.crop_size is None else self.crop_size
        if masks is None:
            out = self.compose(images=frames)
            images = torch.from_numpy(np.ascontiguousarray(out["images"].transpose(0, 3, 1, 2)))
            return AugmentedClip(images, None, content, (int(images.shape[-2]), int(images.shape[-1])))
        out = self.compose(images=frames, masks=masks)
        out_masks = np.asarray(out["masks"])
        if empty_channels:
            out_masks = out_masks[..., :0]
        images = torch.from_numpy(np.ascontiguousarray(out["images"].transpose(0, 3, 1, 2)))
        return AugmentedClip(images, out_masks, content, (int(images.shape[-2]), int(images.shape[-1])))


def masks_to_boxes_cxcywh(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of binary masks ``(N, T, H, W)`` as normalised ``(cx, cy, w, h)`` ``(N, T, 4)`` and ``valid (N, T)``.

    A box spans the mask's pixels inclusively (``x_max + 1``), divided by the frame width/height;
    empty masks give a zero box and ``valid = False`` (VisTR/SeqFormer zero vanished boxes).
    """
    n, t, h, w = masks.shape
    boxes = np.zeros((n, t, 4), dtype=np.float32)
    rows, cols = masks.any(axis=3), masks.any(axis=2)
    valid = rows.any(axis=2)
    y0 = rows.argmax(axis=2)
    y1 = h - rows[..., ::-1].argmax(axis=2)
    x0 = cols.argmax(axis=2)
    x1 = w - cols[..., ::-1].argmax(axis=2)
    boxes[..., 0] = (x0 + x1) / 2 / w
    boxes[..., 1] = (y0 + y1) / 2 / h
    boxes[..., 2] = (x1 - x0) / w
    boxes[..., 3] = (y1 - y0) / h
    boxes[~valid] = 0.0
    return boxes, valid


def worker_init_fn(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed the dataset's augmentation and numpy RNG from the worker seed."""
    info = get_worker_info()
    if info is None:
        return
    reseed = getattr(info.dataset, "reseed", None)
    if reseed is not None:
        reseed(info.seed % 2**32)
