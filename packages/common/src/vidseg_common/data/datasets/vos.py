"""VOS clip dataset over a DAVIS or YouTube-VOS reader (batch contract of docs/architecture.md "Data contracts").

Item (before collation): ``frames (T, 3, H, W) float``, ``masks (T, H, W) long`` (0 bg, 1..K, 255
ignore), ``num_objects`` (int tensor), ``meta`` dict (video, frame names, original size, annotated).

Training: frames come from the clip sampler; the objects present in the first sampled frame after
augmentation are kept (at most ``max_objects``, chosen at random as STCN does) and renumbered 1..K;
other objects become background. A clip whose first frame lost every object (cropping, late entry)
is re-sampled up to ``max_tries`` times (AOT's ``MAX_CROP_STEPS``), then returned with K = 0.
Evaluation returns whole videos with the annotations that exist (void elsewhere). For YouTube-VOS
``valid`` an annotated frame holds only the objects that first appear there (``meta["first_frame"]``
says where each object must be inserted); other pixels of it read 0, not "background of all objects".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.data.transforms import ClipAugment


class VOSReader(Protocol):
    def frame_names(self, video: str) -> list[str]: ...
    def read_frame(self, video: str, frame: str) -> np.ndarray: ...
    def read_mask(self, video: str, frame: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray: ...
    def read_video(self, video: str) -> Any: ...


class VOSClipDataset(Dataset):
    """Clips (train) or whole videos (eval) of VOS videos.

    Args:
        reader: a :class:`~vidseg_common.data.formats.davis.DavisReader` or YouTube-VOS reader.
        videos: video names.
        augment: clip transform.
        sampler: ``sampler(num_frames, rng) -> indices``; ``None`` = whole videos (evaluation).
        max_objects: objects kept per training clip (STCN: 2); ``None`` keeps all.
        min_pixels: fewest pixels for an object to count as present in the first clip frame.
        repeat: dataset length multiplier (``DAVIS_REPEAT``).
        max_tries: re-sampling attempts for clips without objects.
        first_frame_only: evaluation reads only the first annotation (DAVIS test-dev; DAVIS reader only).
        seed: seed of the sampling RNG (reseeded per worker).
    """

    def __init__(
        self,
        reader: VOSReader,
        videos: list[str],
        augment: ClipAugment,
        sampler: Callable[[int, np.random.Generator], list[int]] | None = None,
        max_objects: int | None = None,
        min_pixels: int = 1,
        repeat: int = 1,
        max_tries: int = 5,
        first_frame_only: bool = False,
        seed: int = 0,
    ) -> None:
        self.reader, self.videos, self.augment, self.sampler = reader, list(videos), augment, sampler
        self.max_objects, self.min_pixels, self.repeat, self.max_tries = max_objects, min_pixels, repeat, max_tries
        self.first_frame_only = first_frame_only
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        """Reseed the sampling RNG and the augmentation (per DataLoader worker)."""
        self.rng = np.random.default_rng(seed)
        self.augment.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.videos) * (self.repeat if self.sampler is not None else 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        video = self.videos[index % len(self.videos)]
        return self._whole(video) if self.sampler is None else self._clip(video)

    def _clip(self, video: str) -> dict[str, Any]:
        names = self.reader.frame_names(video)
        for _ in range(self.max_tries):
            indices = self.sampler(len(names), self.rng)
            frames = np.stack([self.reader.read_frame(video, names[i]) for i in indices])
            masks = np.stack([self.reader.read_mask(video, names[i], frames.shape[1:3]) for i in indices])
            size = frames.shape[1:3]
            clip = self.augment.apply(frames, masks)
            frames_t, masks_a = clip.frames, clip.masks
            ids, counts = np.unique(masks_a[0], return_counts=True)
            present = [int(i) for i, c in zip(ids, counts) if i not in (0, VOID_ID) and c >= self.min_pixels]
            if present:
                break
        if self.max_objects is not None and len(present) > self.max_objects:
            present = sorted(self.rng.choice(present, size=self.max_objects, replace=False).tolist())
        lut = np.zeros(256, dtype=np.int64)
        lut[VOID_ID] = VOID_ID
        for new_id, old in enumerate(present, start=1):
            lut[old] = new_id
        meta = {"video": video, "frames": [names[i] for i in indices], "size": size,
                "resized_size": clip.content_size, "padded_size": clip.padded_size}
        return {"frames": frames_t, "masks": torch.from_numpy(lut[masks_a]), "num_objects": torch.tensor(len(present)),
                "meta": meta}

    def _whole(self, video: str) -> dict[str, Any]:
        record = self.reader.read_video(video, first_frame_only=True) if self.first_frame_only else self.reader.read_video(video)
        clip = self.augment.apply(record.frames, record.masks)
        frames_t, masks_a = clip.frames, clip.masks
        meta = {"video": video, "frames": record.frame_names, "size": record.frames.shape[1:3],
                "resized_size": clip.content_size, "padded_size": clip.padded_size,
                "annotated": record.annotated.tolist(), "first_frame": record.first_frame}
        return {"frames": frames_t, "masks": torch.from_numpy(masks_a.astype(np.int64)),
                "num_objects": torch.tensor(record.num_objects), "meta": meta}
