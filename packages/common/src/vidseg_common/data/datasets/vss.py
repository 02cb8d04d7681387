"""VSS dataset: the annotated frame and T previous frames (Cityscapes sequences, CamVid video).

Item: ``frames (T+1, 3, H, W) float`` (last = annotated), ``label (H, W) long`` (trainIds/class ids,
255 ignore), ``meta`` (sample stem, frame stems, original size). Offsets come from a
:class:`~vidseg_common.data.sampling.PreviousFrames` sampler: random gaps in training, fixed gaps
(seeded, deterministic) in evaluation — TDNet draws unseeded random gaps at validation too, which
makes its val mIoU non-deterministic (docs/reference/vss.md §2.4); we do not.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from vidseg_common.data.sampling import PreviousFrames
from vidseg_common.data.transforms import ClipAugment


class VSSReader(Protocol):
    def samples(self) -> list[str]: ...
    def offset_range(self, stem: str) -> tuple[int, int]: ...
    def frame_stem(self, stem: str, offset: int) -> str: ...
    def read_frame(self, stem: str, offset: int = 0) -> np.ndarray: ...
    def read_label(self, stem: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray: ...


class VSSClipDataset(Dataset):
    """Annotated frame + previous frames of a Cityscapes-sequence or CamVid reader.

    Args:
        reader: :class:`~vidseg_common.data.formats.cityscapes_sequence.CityscapesSequenceReader` or
            :class:`~vidseg_common.data.formats.camvid.CamVidReader`.
        augment: clip transform (the label is transformed with the frames).
        sampler: previous-frame offsets (``deterministic=True`` for evaluation).
        repeat: dataset length multiplier.
        seed: seed of the sampling RNG (reseeded per worker).
    """

    def __init__(
        self, reader: VSSReader, augment: ClipAugment, sampler: PreviousFrames, repeat: int = 1, seed: int = 0
    ) -> None:
        self.reader, self.augment, self.sampler, self.repeat = reader, augment, sampler, repeat
        self.stems = reader.samples()
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.augment.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.stems) * self.repeat

    def __getitem__(self, index: int) -> dict[str, Any]:
        stem = self.stems[index % len(self.stems)]
        lo, _ = self.reader.offset_range(stem)
        offsets = self.sampler(lo, self.rng)
        frames = np.stack([self.reader.read_frame(stem, o) for o in offsets])
        label = self.reader.read_label(stem, frames.shape[1:3])
        masks = np.broadcast_to(label, frames.shape[:3]).copy()
        clip = self.augment.apply(frames, masks)
        frames_t, masks_a = clip.frames, clip.masks
        meta = {"sample": stem, "frames": [self.reader.frame_stem(stem, o) for o in offsets],
                "size": frames.shape[1:3], "resized_size": clip.content_size, "padded_size": clip.padded_size}
        return {"frames": frames_t, "label": torch.from_numpy(masks_a[-1].astype(np.int64)), "meta": meta}
