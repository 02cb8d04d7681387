"""VIS clip dataset over a YouTube-VIS reader (and COCO pseudo-videos), docs/architecture.md batch contract.

Item: ``frames (T, 3, H, W) float`` and ``target`` dict ``labels (N,) long`` (dataset category ids),
``masks (N, T, H, W) bool``, ``boxes (N, T, 4)`` normalised cxcywh recomputed from the augmented
masks, ``valid (N, T) bool`` (False where the instance is absent or was cropped away); ``meta``.

Training keeps an instance if it is visible in any frame of the augmented clip (SeqFormer ``Check``)
and re-samples the clip (up to ``max_tries``) when none survives. COCO images become T-frame
pseudo-videos by applying ``pseudo_video_augment`` independently to T copies of the image
(SeqFormer ``coco2seq``: the original plus T−1 augmented frames, shuffled), before the clip transform.
Default per-frame transform: :func:`pseudo_video_transform` (the paper's ±10° rotation; the code uses ±20°).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vidseg_common.data.formats.coco import CocoPseudoVideoReader
from vidseg_common.data.formats.youtube_vis import YouTubeVISReader
from vidseg_common.data.transforms import ClipAugment, masks_to_boxes_cxcywh


def pseudo_video_transform(rotate: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1)) -> A.Compose:
    """Per-frame geometry of COCO pseudo-videos (SeqFormer: rotate ±10° in the paper, translate ±10 %)."""
    return A.Compose([A.Affine(rotate=(-rotate, rotate), translate_percent=(-translate, translate), scale=scale,
                               interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                               border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=1.0)])


class VISClipDataset(Dataset):
    """Clips (train) or whole videos (eval) of YouTube-VIS videos or COCO pseudo-videos.

    Args:
        reader: a :class:`YouTubeVISReader` or :class:`CocoPseudoVideoReader`.
        augment: clip transform (same parameters for all frames).
        sampler: ``sampler(num_frames, rng) -> indices``; ``None`` = whole videos.
        pseudo_video_frames: frames per COCO pseudo-video.
        pseudo_video_augment: per-frame uint8 transform of COCO pseudo-video frames (``None``: plain copies).
        max_tries: re-sampling attempts when no instance survives augmentation.
        repeat: dataset length multiplier in training (VisTR iterates every frame as an anchor: ~length).
        seed: seed of the sampling RNG (reseeded per worker).
    """

    def __init__(
        self,
        reader: YouTubeVISReader | CocoPseudoVideoReader,
        augment: ClipAugment,
        sampler: Callable[[int, np.random.Generator], list[int]] | None = None,
        pseudo_video_frames: int = 5,
        pseudo_video_augment: A.Compose | None = None,
        max_tries: int = 5,
        repeat: int = 1,
        seed: int = 0,
    ) -> None:
        self.reader, self.augment, self.sampler, self.repeat = reader, augment, sampler, repeat
        self.is_coco = isinstance(reader, CocoPseudoVideoReader)
        self.ids = reader.image_ids() if self.is_coco else reader.video_ids()
        self.pseudo_video_frames, self.pseudo_video_augment = pseudo_video_frames, pseudo_video_augment
        self.max_tries = max_tries
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.augment.set_random_seed(seed)
        if self.pseudo_video_augment is not None:
            self.pseudo_video_augment.set_random_seed(seed + 1)

    def _pseudo_video(self, frame: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame (H, W, 3)``, ``masks (H, W, N)`` → T shuffled frames: the original + T−1 transformed copies."""
        frames, out_masks = [frame], [masks]
        for _ in range(self.pseudo_video_frames - 1):
            if self.pseudo_video_augment is None or masks.shape[-1] == 0:
                frames.append(frame), out_masks.append(masks)
                continue
            out = self.pseudo_video_augment(image=frame, mask=masks)
            frames.append(out["image"]), out_masks.append(out["mask"])
        order = self.rng.permutation(len(frames))
        return np.stack(frames)[order], np.stack(out_masks)[order]

    def __len__(self) -> int:
        return len(self.ids) * (self.repeat if self.sampler is not None else 1)

    def _load(self, item_id: int) -> tuple[np.ndarray, np.ndarray, list[int], dict[str, Any]]:
        """Frames ``(T, H, W, 3)``, instance masks ``(T, H, W, N) uint8``, categories, meta."""
        if self.is_coco:
            video = self.reader.read_video(item_id)
            masks = np.stack([i.masks[0] for i in video.instances], axis=-1).astype(np.uint8)
            frames, masks = self._pseudo_video(video.frames[0], masks)
            return frames, masks, [i.category_id for i in video.instances], {"image_id": item_id, "size": frames.shape[1:3]}
        info = self.reader.videos[item_id]
        indices = list(range(info["length"])) if self.sampler is None else self.sampler(info["length"], self.rng)
        frames = self.reader.read_frames(item_id, indices)
        instances = self.reader.read_instances(item_id, indices)
        masks = (np.stack([i.masks for i in instances], axis=-1) if instances
                 else np.zeros((*frames.shape[:3], 0), dtype=bool)).astype(np.uint8)
        meta = {"video_id": item_id, "frames": indices, "size": frames.shape[1:3], "file_names": info["file_names"]}
        return frames, masks, [i.category_id for i in instances], meta

    def __getitem__(self, index: int) -> dict[str, Any]:
        item_id = self.ids[index % len(self.ids)]
        for _ in range(self.max_tries if self.sampler is not None else 1):
            frames, masks, labels, meta = self._load(item_id)
            clip = self.augment.apply(frames, masks)
            frames_t, masks_a = clip.frames, clip.masks
            inst = masks_a.transpose(3, 0, 1, 2).astype(bool)  # (N, T, H, W)
            boxes, valid = masks_to_boxes_cxcywh(inst)
            keep = valid.any(axis=1) if self.sampler is not None else np.ones(len(labels), dtype=bool)
            if keep.any() or self.sampler is None:
                break
        target = {
            "labels": torch.tensor(np.asarray(labels, dtype=np.int64)[keep]),
            "masks": torch.from_numpy(inst[keep]),
            "boxes": torch.from_numpy(boxes[keep]),
            "valid": torch.from_numpy(valid[keep]),
        }
        meta = {**meta, "resized_size": clip.content_size, "padded_size": clip.padded_size}
        return {"frames": frames_t, "target": target, "meta": meta}
