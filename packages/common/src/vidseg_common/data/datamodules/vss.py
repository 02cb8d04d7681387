"""``VSSDataModule``: Cityscapes sequences or CamVid video, annotated frame + T previous frames (STT/TDNet).

TDNet's training augmentation (docs/reference/vss.md §2.3), clip-consistent: ``rotate_degrees`` (TDNet ``rotate: 5``: one
uniform angle in ``±degrees`` per clip, bilinear frames with black fill, nearest labels with ignore fill —
TDNet fills 250, its ignore id), colour jitter, short-side rescale, horizontal flip, then a random crop whose
region has ``crop_ratio`` (w/h) and an area fraction in ``crop_scale``, resized to ``crop_size``. TDNet's
``rscale`` + 769×1537 ``rcrop`` keeps the crop's 2:1 aspect (no distortion): ``crop_ratio: [2.0, 2.0]`` with
``crop_scale: [0.25, 1.0]`` gives its 1–2× zoom range as a continuous draw (TDNet draws from
{0.75, 1, …, 2}; its 0.75 is resized back up, i.e. no zoom).
"""

from __future__ import annotations

from typing import Any, Literal

import albumentations as A
import cv2
import numpy as np
import torch

from vidseg_common.data.datamodules.base import ClipDataModule
from vidseg_common.data.datasets import VSSClipDataset
from vidseg_common.data.formats.camvid import NUM_CLASSES as CAMVID_CLASSES
from vidseg_common.data.formats.camvid import CamVidReader
from vidseg_common.data.formats.cityscapes import NUM_CLASSES as CITYSCAPES_CLASSES
from vidseg_common.data.formats.cityscapes_sequence import CityscapesSequenceReader
from vidseg_common.data.sampling import PreviousFrames
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.transforms import AugmentedClip, ClipAugment
from vidseg_common.errors import ConfigError


class VSSDataModule(ClipDataModule):
    """Video semantic segmentation data.

    Args:
        dataset: ``"cityscapes"`` or ``"camvid"``.
        train_split: training split.
        val_split: validation split.
        test_split: test/predict split (default: ``val_split``).
        num_previous: previous frames T (STT: 3 → 4-frame clips).
        max_gap: largest random gap between consecutive frames in training (TDNet: 2).
        eval_gap: fixed gap in evaluation.
        repeat: training samples per epoch multiplier.
        short_side: training short-side resize (sequence = random choice) or ``None``.
        crop_size: training crop ``(h, w)`` or ``None`` (TDNet 769×1537 style crops).
        crop_scale: crop area range.
        crop_ratio: aspect-ratio (w/h) range of the crop region (TDNet: the 769×1537 crop's 2:1, no distortion).
        rotate_degrees: random rotation in ``±rotate_degrees`` per clip before the other transforms (TDNet: 5;
            0 = off).
        hflip_prob: horizontal flip probability.
        color_jitter: ``(brightness, contrast, saturation, hue)`` or ``None``.
        eval_short_side: evaluation short side (``None``: full resolution, as mIoU is computed there).
        pad_divisor: pad to a multiple of the model stride.
    """

    layout = "cityscapes"

    def __init__(
        self,
        root: str = "synthetic",
        dataset: Literal["cityscapes", "camvid"] = "cityscapes",
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        num_previous: int = 3,
        max_gap: int = 2,
        eval_gap: int = 1,
        repeat: int = 1,
        short_side: list[int] | None = None,
        crop_size: tuple[int, int] | None = None,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        crop_ratio: tuple[float, float] = (0.75, 1.3333333333333333),
        rotate_degrees: float = 0.0,
        hflip_prob: float = 0.5,
        color_jitter: tuple[float, float, float, float] | None = None,
        eval_short_side: int | None = None,
        pad_divisor: int = 32,
        synthetic: SyntheticConfig | dict[str, Any] | None = None,
        cache_dir: str | None = None,
        batch_size: int = 2,
        num_workers: int = 2,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        if dataset not in ("cityscapes", "camvid"):
            raise ConfigError(f"data.dataset must be 'cityscapes' or 'camvid', got {dataset!r}")
        if rotate_degrees < 0 or not 0 < crop_ratio[0] <= crop_ratio[1]:
            raise ConfigError(f"data.rotate_degrees must be >= 0 and data.crop_ratio a (min, max) range > 0, "
                              f"got {rotate_degrees}, {crop_ratio}")
        self.layout = dataset
        super().__init__(root, synthetic, cache_dir, batch_size, num_workers, pin_memory, seed)
        self.save_hyperparameters()
        self.dataset = dataset
        self.num_classes = CITYSCAPES_CLASSES if dataset == "cityscapes" else CAMVID_CLASSES
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split or val_split
        self.num_previous, self.max_gap, self.eval_gap, self.repeat = num_previous, max_gap, eval_gap, repeat
        self.train_augment = dict(short_side=short_side, crop_size=crop_size, crop_scale=crop_scale,
                                  crop_ratio=tuple(crop_ratio), hflip_prob=hflip_prob, color_jitter=color_jitter,
                                  pad_divisor=pad_divisor)
        self.rotate_degrees = rotate_degrees
        self.eval_augment = dict(short_side=eval_short_side, pad_divisor=pad_divisor)

    def synthetic_defaults(self) -> dict[str, Any]:
        # CamVid has 4 sequences: 2 for training, 1 val + 1 test
        return {"num_videos": 2, "num_val_videos": 2, "num_frames": 20} if self.layout == "camvid" else {}

    def _reader(self, split: str) -> CityscapesSequenceReader | CamVidReader:
        root = self.resolved_root()
        return CityscapesSequenceReader(root, split) if self.dataset == "cityscapes" else CamVidReader(root, split)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            augment: ClipAugment | RotatedClipAugment = ClipAugment(True, seed=self.seed, **self.train_augment)
            if self.rotate_degrees > 0:
                augment = RotatedClipAugment(self.rotate_degrees, augment, seed=self.seed)
            self.datasets["train"] = VSSClipDataset(
                self._reader(self.train_split), augment,
                PreviousFrames(self.num_previous, self.max_gap), repeat=self.repeat, seed=self.seed)
        eval_sampler = PreviousFrames(self.num_previous, deterministic=True, eval_gap=self.eval_gap)
        if stage in (None, "fit", "validate"):
            self.datasets["val"] = VSSClipDataset(self._reader(self.val_split), ClipAugment(False, **self.eval_augment), eval_sampler)
        if stage in (None, "test", "predict"):
            reader = self._reader(self.test_split)
            for key in ("test", "predict"):
                self.datasets[key] = VSSClipDataset(reader, ClipAugment(False, **self.eval_augment), eval_sampler)


class RotatedClipAugment:
    """TDNet's ``RandomRotate`` (one angle per clip) followed by a :class:`ClipAugment`.

    Args:
        degrees: the angle is uniform in ``[-degrees, degrees]``.
        augment: the transform applied after the rotation.
        ignore_index: label written where the rotation leaves the frame (frames get black).
        seed: seed of the rotation's RNG (reseeded per worker with :meth:`set_random_seed`).
    """

    def __init__(self, degrees: float, augment: ClipAugment, ignore_index: int = 255, seed: int | None = None) -> None:
        self.rotate = A.Compose([A.Rotate(limit=(-degrees, degrees), interpolation=cv2.INTER_LINEAR,
                                          mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_CONSTANT,
                                          fill=0, fill_mask=ignore_index, p=1.0)], seed=seed)
        self.augment = augment

    def set_random_seed(self, seed: int) -> None:
        self.rotate.set_random_seed(seed)
        self.augment.set_random_seed(seed)

    def __call__(self, frames: np.ndarray, masks: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray | None]:
        """``frames (T, H, W, 3) uint8``, ``masks (T, H, W)`` → as :class:`ClipAugment` (rotated first)."""
        out = self.apply(frames, masks)
        return out.frames, out.masks

    def apply(self, frames: np.ndarray, masks: np.ndarray | None = None) -> AugmentedClip:
        """As :meth:`ClipAugment.apply`, rotated first."""
        if masks is None:
            return self.augment.apply(np.asarray(self.rotate(images=frames)["images"]))
        out = self.rotate(images=frames, masks=masks)
        return self.augment.apply(np.asarray(out["images"]), np.asarray(out["masks"]))
