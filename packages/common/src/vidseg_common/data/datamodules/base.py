"""Shared plumbing of the VOS/VIS/VSS DataModules: synthetic roots, loaders, worker seeding."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from vidseg_common.data.datasets import collate_clips
from vidseg_common.data.synthetic.cache import synthetic_root
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.transforms import worker_init_fn
from vidseg_common.errors import ConfigError

SYNTHETIC = "synthetic"
_STAGE_OF = {"train": "fit", "val": "validate", "test": "test", "predict": "predict"}


class ClipDataModule(L.LightningDataModule):
    """Base class: resolves ``root`` (a folder, or ``"synthetic"`` → generated cache) and builds loaders.

    Args:
        root: dataset folder, or ``"synthetic"`` to generate (once) a synthetic set in the real layout.
        synthetic: generator options used when ``root == "synthetic"`` (``layout`` is set by the subclass).
        cache_dir: cache folder for synthetic sets (default ``$VIDSEG_CACHE`` or ``<repo>/.cache/vidseg``).
        batch_size: training batch size (evaluation always uses 1: whole videos of any length).
        num_workers: DataLoader workers.
        pin_memory: DataLoader ``pin_memory``.
        seed: seed of sampling and augmentation (each worker is reseeded from the loader's generator).
    """

    layout: str = ""

    def __init__(
        self,
        root: str = SYNTHETIC,
        synthetic: SyntheticConfig | dict[str, Any] | None = None,
        cache_dir: str | None = None,
        batch_size: int = 2,
        num_workers: int = 2,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ConfigError(f"batch_size must be ≥ 1 and num_workers ≥ 0, got {batch_size}, {num_workers}")
        self.root, self.cache_dir = root, cache_dir
        self.batch_size, self.num_workers, self.pin_memory, self.seed = batch_size, num_workers, pin_memory, seed
        self.synthetic = self._synthetic_config(synthetic)
        self.datasets: dict[str, Dataset] = {}

    def _synthetic_config(self, synthetic: SyntheticConfig | dict[str, Any] | None) -> SyntheticConfig:
        if synthetic is None:
            options: dict[str, Any] = {}
        elif isinstance(synthetic, SyntheticConfig):
            options = dataclasses.asdict(synthetic)
        else:
            options = dict(synthetic)
        options = {**self.synthetic_defaults(), **options, "layout": self.layout}
        try:
            return SyntheticConfig(**options)
        except TypeError as err:
            raise ConfigError(f"data.synthetic: {err}") from err

    @property
    def dataset_name(self) -> str:
        """Name recorded in run tags: the layout, prefixed with ``synthetic-`` for generated data."""
        return f"synthetic-{self.layout}" if self.root == SYNTHETIC else self.layout

    def synthetic_defaults(self) -> dict[str, Any]:
        """Generator options this DataModule changes from :class:`SyntheticConfig`'s defaults."""
        return {}

    def resolved_root(self) -> Path:
        """The dataset folder (generating the synthetic set if needed)."""
        if self.root == SYNTHETIC:
            return synthetic_root(self.synthetic, self.cache_dir)
        root = Path(self.root)
        if not root.is_dir():
            raise ConfigError(f"data.root: {root} is not a folder (use a dataset folder or 'synthetic')")
        return root

    def prepare_data(self) -> None:
        if self.root == SYNTHETIC:
            self.resolved_root()

    def _loader(self, stage: str, shuffle: bool, batch_size: int) -> DataLoader:
        if stage not in self.datasets:
            self.setup(_STAGE_OF[stage])
        generator = torch.Generator().manual_seed(self.seed * 10 + list(_STAGE_OF).index(stage))
        return DataLoader(
            self.datasets[stage], batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
            collate_fn=collate_clips, worker_init_fn=worker_init_fn, generator=generator,
            pin_memory=self.pin_memory, drop_last=shuffle and len(self.datasets[stage]) >= batch_size,
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, 1)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, 1)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", False, 1)
