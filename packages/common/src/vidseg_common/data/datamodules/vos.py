"""``VOSDataModule``: DAVIS-2017 or YouTube-VOS clips (STCN max-skip or CFBI reference/previous/current)."""

from __future__ import annotations

from typing import Any, Literal

from vidseg_common.data.datamodules.base import ClipDataModule
from vidseg_common.data.datasets import VOSClipDataset
from vidseg_common.data.formats.davis import DavisReader
from vidseg_common.data.formats.youtube_vos import YouTubeVOSReader
from vidseg_common.data.sampling import MaxSkip, MaxSkipCurriculum, ReferencePreviousCurrent
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.transforms import ClipAugment
from vidseg_common.errors import ConfigError


class VOSDataModule(ClipDataModule):
    """Semi-supervised VOS data: training clips, whole videos for val/test/predict.

    Args:
        dataset: ``"davis"`` (DAVIS-2017 layout) or ``"youtube_vos"``.
        resolution: DAVIS resolution folder (``"480p"`` or ``"Full-Resolution"``).
        train_split: DAVIS ImageSets name / YouTube-VOS split used for training.
        val_split: split used for validation (and test/predict unless ``test_split`` is given).
        test_split: split for test/predict (default: ``val_split``).
        protocol: ``"stcn"`` (3-frame max-skip curriculum; SpVOS) or ``"cfbi"`` (reference + previous +
            current with random gaps; SSTVOS).
        clip_frames: frames per clip for ``stcn``.
        max_skip: starting max skip (``stcn``).
        curriculum: follow STCN's max-skip schedule by epoch (needs ``reload_dataloaders_every_n_epochs: 1``).
        skip_divisor: divide skips for sparsely annotated sets (YouTube-VOS: 5).
        num_current: current frames per sample (``cfbi``).
        max_gap: largest random gap (``cfbi``).
        reverse_prob: probability of reversing a clip in time.
        max_objects: objects kept per training clip (STCN: 2; ``None``: all).
        min_object_pixels: fewest pixels for an object of the first clip frame to count (AOT's reference
            frame needs > 200 foreground pixels; clips are re-sampled otherwise).
        repeat: times each training video appears per epoch (``DAVIS_REPEAT``).
        crop_size: training crop ``(h, w)`` (STCN 384; SSTVOS 465).
        crop_scale: crop area range.
        hflip_prob: horizontal flip probability.
        color_jitter: ``(brightness, contrast, saturation, hue)`` or ``None``.
        eval_short_side: evaluation short-side resize (``None``: native 480p).
        eval_first_frame_only: test/predict read only first-frame annotations (DAVIS test-dev has no others).
        pad_divisor: pad frames to a multiple of the model stride.
    """

    layout = "davis"

    def __init__(
        self,
        root: str = "synthetic",
        dataset: Literal["davis", "youtube_vos"] = "davis",
        resolution: str = "480p",
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        protocol: Literal["stcn", "cfbi"] = "stcn",
        clip_frames: int = 3,
        max_skip: int = 5,
        curriculum: bool = True,
        skip_divisor: int = 1,
        num_current: int = 3,
        max_gap: int = 3,
        reverse_prob: float = 0.5,
        max_objects: int | None = 2,
        min_object_pixels: int = 1,
        repeat: int = 1,
        crop_size: tuple[int, int] = (384, 384),
        crop_scale: tuple[float, float] = (0.36, 1.0),
        hflip_prob: float = 0.5,
        color_jitter: tuple[float, float, float, float] | None = (0.1, 0.03, 0.03, 0.0),
        eval_short_side: int | None = None,
        eval_first_frame_only: bool = False,
        pad_divisor: int = 16,
        synthetic: SyntheticConfig | dict[str, Any] | None = None,
        cache_dir: str | None = None,
        batch_size: int = 4,
        num_workers: int = 2,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        if dataset not in ("davis", "youtube_vos"):
            raise ConfigError(f"data.dataset must be 'davis' or 'youtube_vos', got {dataset!r}")
        if protocol not in ("stcn", "cfbi"):
            raise ConfigError(f"data.protocol must be 'stcn' or 'cfbi', got {protocol!r}")
        self.layout = dataset
        super().__init__(root, synthetic, cache_dir, batch_size, num_workers, pin_memory, seed)
        self.save_hyperparameters()
        if root == "synthetic" and dataset == "youtube_vos":
            val_split = "valid" if val_split == "val" else val_split
        self.dataset, self.resolution = dataset, resolution
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split or val_split
        self.protocol, self.clip_frames, self.max_skip, self.curriculum = protocol, clip_frames, max_skip, curriculum
        self.schedule = MaxSkipCurriculum(start=max_skip, divisor=skip_divisor)
        self.num_current, self.max_gap, self.reverse_prob = num_current, max_gap, reverse_prob
        self.max_objects, self.min_object_pixels, self.repeat = max_objects, min_object_pixels, repeat
        self.train_augment = dict(crop_size=tuple(crop_size), crop_scale=tuple(crop_scale), hflip_prob=hflip_prob,
                                  color_jitter=color_jitter, pad_divisor=pad_divisor)
        self.eval_augment = dict(short_side=eval_short_side, pad_divisor=pad_divisor)
        self.eval_first_frame_only = eval_first_frame_only

    def _reader(self, split: str) -> tuple[Any, list[str]]:
        root = self.resolved_root()
        if self.dataset == "davis":
            reader = DavisReader(root, self.resolution)
            return reader, reader.videos(split)
        reader = YouTubeVOSReader(root, split)
        return reader, reader.videos()

    def _sampler(self) -> MaxSkip | ReferencePreviousCurrent:
        if self.protocol == "cfbi":
            return ReferencePreviousCurrent(self.num_current, self.max_gap, self.reverse_prob)
        sampler = MaxSkip(self.clip_frames, self.max_skip, self.reverse_prob)
        trainer = self.trainer
        if self.curriculum and trainer is not None and trainer.max_epochs:
            sampler.set_max_skip(self.schedule(trainer.current_epoch / trainer.max_epochs))
        return sampler

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            reader, videos = self._reader(self.train_split)
            self.datasets["train"] = VOSClipDataset(
                reader, videos, ClipAugment(True, mask_fill=255, seed=self.seed, **self.train_augment),
                self._sampler(), self.max_objects, self.min_object_pixels, repeat=self.repeat, seed=self.seed)
        if stage in (None, "fit", "validate"):
            reader, videos = self._reader(self.val_split)
            self.datasets["val"] = VOSClipDataset(reader, videos, ClipAugment(False, **self.eval_augment))
        if stage in (None, "test", "predict"):
            reader, videos = self._reader(self.test_split)
            for key in ("test", "predict"):
                self.datasets[key] = VOSClipDataset(reader, videos, ClipAugment(False, **self.eval_augment),
                                                    first_frame_only=self.eval_first_frame_only)

    def train_dataloader(self):
        self.setup("fit")  # rebuild so the curriculum's max skip follows the epoch
        return super().train_dataloader()
