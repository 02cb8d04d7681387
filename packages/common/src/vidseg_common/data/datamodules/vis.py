"""``VISDataModule``: YouTube-VIS 2019/2021 clips (VisTR cyclic windows or SeqFormer local+global), optional COCO."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch.utils.data import ConcatDataset

from vidseg_common.data.datamodules.base import ClipDataModule
from vidseg_common.data.datasets import VISClipDataset
from vidseg_common.data.datasets.vis import pseudo_video_transform
from vidseg_common.data.formats.coco import COCO_TO_YTVIS19, CocoPseudoVideoReader
from vidseg_common.data.formats.youtube_vis import YouTubeVISReader
from vidseg_common.data.sampling import CyclicWindow, LocalGlobal
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.transforms import ClipAugment
from vidseg_common.errors import ConfigError


class VISDataModule(ClipDataModule):
    """Video instance segmentation data.

    Args:
        train_json: dataset JSON for training, relative to ``root`` (``train.json``).
        val_json: JSON for validation/test/predict (``valid.json``; the official one has no annotations).
        train_images: frame folder of ``train_json`` relative to ``root``.
        val_images: frame folder of ``val_json``.
        protocol: ``"seqformer"`` (anchor + local + global frames) or ``"vistr"`` (consecutive cyclic window).
        num_frames: frames per clip (SeqFormer 5, VisTR 36).
        local_range: SeqFormer local-frame distance.
        repeat: training videos per epoch multiplier (VisTR/SeqFormer iterate every frame as an anchor).
        coco_json: COCO instances JSON for joint training as pseudo-videos (``None``: off), relative to ``root``.
        coco_images: COCO image folder.
        coco_category_map: ``"ytvis19"`` (SeqFormer's map) or ``"none"`` (keep COCO ids).
        pseudo_rotation: rotation range of pseudo-video frames in degrees (paper ±10; code ±20).
        short_side: training short-side sizes (random choice; SeqFormer 288..512).
        max_size: long-side cap.
        crop_size: training crop ``(h, w)`` or ``None``.
        crop_scale: crop area range.
        hflip_prob: horizontal flip probability.
        eval_short_side: evaluation short side (SeqFormer/VisTR: 360).
        pad_divisor: pad to a multiple of the model stride.
    """

    layout = "youtube_vis"

    def __init__(
        self,
        root: str = "synthetic",
        train_json: str = "train.json",
        val_json: str = "valid.json",
        train_images: str = "train/JPEGImages",
        val_images: str = "valid/JPEGImages",
        protocol: Literal["seqformer", "vistr"] = "seqformer",
        num_frames: int = 5,
        local_range: int = 3,
        repeat: int = 1,
        coco_json: str | None = None,
        coco_images: str | None = None,
        coco_category_map: Literal["ytvis19", "none"] = "ytvis19",
        pseudo_rotation: float = 10.0,
        short_side: list[int] | None = None,
        max_size: int | None = 768,
        crop_size: tuple[int, int] | None = None,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        hflip_prob: float = 0.5,
        eval_short_side: int | None = 360,
        pad_divisor: int = 32,
        synthetic: SyntheticConfig | dict[str, Any] | None = None,
        cache_dir: str | None = None,
        batch_size: int = 2,
        num_workers: int = 2,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        if protocol not in ("seqformer", "vistr"):
            raise ConfigError(f"data.protocol must be 'seqformer' or 'vistr', got {protocol!r}")
        super().__init__(root, synthetic, cache_dir, batch_size, num_workers, pin_memory, seed)
        self.save_hyperparameters()
        self.train_json, self.val_json, self.train_images, self.val_images = train_json, val_json, train_images, val_images
        self.protocol, self.num_frames, self.local_range, self.repeat = protocol, num_frames, local_range, repeat
        self.coco_json, self.coco_images = coco_json, coco_images
        self.coco_map = COCO_TO_YTVIS19 if coco_category_map == "ytvis19" else None
        self.pseudo_rotation = pseudo_rotation
        self.train_augment = dict(short_side=short_side, max_size=max_size, crop_size=crop_size, crop_scale=crop_scale,
                                  hflip_prob=hflip_prob, color_jitter=None, pad_divisor=pad_divisor, mask_fill=0)
        self.eval_augment = dict(short_side=eval_short_side, max_size=max_size, pad_divisor=pad_divisor, mask_fill=0)

    def synthetic_defaults(self) -> dict[str, Any]:
        # sparse annotation every 5th frame: 40 frames give 8-frame videos
        return {"num_frames": 40}

    def _reader(self, json_name: str, images: str) -> YouTubeVISReader:
        root = self.resolved_root()
        return YouTubeVISReader(Path(root) / json_name, Path(root) / images)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            sampler = LocalGlobal(self.num_frames, self.local_range) if self.protocol == "seqformer" else CyclicWindow(self.num_frames)
            train = VISClipDataset(self._reader(self.train_json, self.train_images),
                                   ClipAugment(True, seed=self.seed, **self.train_augment), sampler,
                                   repeat=self.repeat, seed=self.seed)
            if self.coco_json is not None:
                if self.coco_images is None:
                    raise ConfigError("data.coco_images is required with data.coco_json")
                root = self.resolved_root()
                coco = CocoPseudoVideoReader(Path(root) / self.coco_json, Path(root) / self.coco_images, self.coco_map)
                coco_ds = VISClipDataset(coco, ClipAugment(True, seed=self.seed + 1, **self.train_augment), sampler,
                                         pseudo_video_frames=self.num_frames,
                                         pseudo_video_augment=pseudo_video_transform(self.pseudo_rotation), seed=self.seed + 1)
                self.datasets["train"] = _ReseedableConcat([train, coco_ds])
            else:
                self.datasets["train"] = train
        if stage in (None, "fit", "validate", "test", "predict"):
            reader = self._reader(self.val_json, self.val_images)
            for key in ("val", "test", "predict"):
                self.datasets[key] = VISClipDataset(reader, ClipAugment(False, **self.eval_augment))


class _ReseedableConcat(ConcatDataset):
    """ConcatDataset that forwards :meth:`reseed` to its parts (per-worker augmentation seeding)."""

    def reseed(self, seed: int) -> None:
        for i, dataset in enumerate(self.datasets):
            dataset.reseed(seed + i)
