"""A tiny segmentation model and data module that exercise the engine in seconds (tests only).

Task: predict, per pixel, whether the pixel of the last frame is brighter than 0.5.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vidseg_common.engine.module import VidSegModule
from vidseg_common.errors import DataError


class TinyBackbone(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class TinyModule(VidSegModule):
    """frames ``(B, T, 3, H, W)`` → logits ``(B, 2, H, W)`` of the last frame.

    Args:
        width: channels of the backbone.
        nan_at_step: make the loss NaN from this global step on (non-finite-loss tests).
        sleep_s: seconds to sleep per training step (gives kill tests time to act).
        start_step_file: if set, the global step at train start is appended to this file.
    """

    def __init__(
        self,
        width: int = 8,
        nan_at_step: int | None = None,
        sleep_s: float = 0.0,
        start_step_file: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.backbone = TinyBackbone(width)
        self.embed = nn.Embedding(4, width)
        self.head = nn.Conv2d(width, 2, 1)
        self.nan_at_step = nan_at_step
        self.sleep_s = sleep_s
        self.start_step_file = start_step_file

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(frames[:, -1]) + self.embed.weight[0].view(1, -1, 1, 1)
        return self.head(feats)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        frames, target = batch
        logits = self(frames)
        return F.cross_entropy(logits, target), logits

    def on_train_start(self) -> None:
        if self.start_step_file and self.trainer.is_global_zero:
            with open(self.start_step_file, "a") as handle:
                handle.write(f"{self.trainer.global_step}\n")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        loss, _ = self._loss(batch)
        if self.nan_at_step is not None and self.global_step >= self.nan_at_step:
            loss = loss * float("nan")
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, logits = self._loss(batch)
        pred = logits.argmax(1)
        target = batch[1]
        inter = ((pred == 1) & (target == 1)).sum()
        union = ((pred == 1) | (target == 1)).sum().clamp(min=1)
        self.log("val/loss", loss, on_epoch=True, batch_size=target.shape[0], sync_dist=True)
        self.log("val/iou", inter / union, on_epoch=True, batch_size=target.shape[0], sync_dist=True)
        return {"pred": pred}

    def render_overlay(self, batch, outputs) -> np.ndarray:
        frame = batch[0][0, -1].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
        mask = outputs["pred"][0].cpu().numpy().astype(bool)
        image = (frame * 255).astype(np.uint8)
        image[mask] = (0.5 * image[mask] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
        return image


class TinyDataModule(pl.LightningDataModule):
    """Random clips with their brightness masks.

    Args:
        root: optional data folder; it must exist (exercises the missing-path error).
        num_train: training clips.
        num_val: validation clips.
        batch_size: clips per batch.
        size: frame height = width.
        num_frames: frames per clip.
        seed: data seed.
    """

    dataset_name = "tiny"

    def __init__(
        self,
        root: str | None = None,
        num_train: int = 16,
        num_val: int = 4,
        batch_size: int = 4,
        size: int = 16,
        num_frames: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if root is not None and not Path(root).is_dir():
            raise DataError(f"data.root: {root} does not exist or is not a directory")
        self.save_hyperparameters()

    def _dataset(self, count: int, offset: int) -> TensorDataset:
        gen = torch.Generator().manual_seed(self.hparams.seed + offset)
        size, frames = self.hparams.size, self.hparams.num_frames
        clips = torch.rand(count, frames, 3, size, size, generator=gen)
        target = (clips[:, -1].mean(1) > 0.5).long()
        return TensorDataset(clips, target)

    def setup(self, stage: str) -> None:
        self.train_set = self._dataset(self.hparams.num_train, 0)
        self.val_set = self._dataset(self.hparams.num_val, 1000)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size)


def main(args=None):
    from vidseg_common.engine.cli import run_cli

    return run_cli(TinyModule, paper="tiny", args=args)


if __name__ == "__main__":
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    main()
