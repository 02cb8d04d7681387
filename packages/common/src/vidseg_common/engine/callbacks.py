"""Engine callbacks: stop on a non-finite loss, log prediction overlays."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from vidseg_common.engine.mlflow import mlflow_loggers
from vidseg_common.errors import NonFiniteLossError


class NonFiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` before ``backward`` when the loss is NaN or Inf.

    Raising before the backward pass means the bad step never reaches the optimizer, so no checkpoint
    written afterwards can contain NaN weights. The message says where it happened and what to try.
    """

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        if torch.isfinite(loss.detach()).all():
            return
        raise NonFiniteLossError(
            f"non-finite training loss ({loss.detach().float().item()}) at epoch {trainer.current_epoch}, "
            f"global step {trainer.global_step}; stopping before the update so no checkpoint is corrupted. "
            "Lower the learning rate, enable gradient clipping (trainer.gradient_clip_val) or check the batch."
        )


class PredictionOverlayCallback(Callback):
    """Log prediction overlays of the first validation batches as MLflow images.

    The paper module supplies the picture: ``render_overlay(batch, outputs) -> np.ndarray | None``
    returning ``(H, W, 3) uint8``. Modules without that method are skipped.

    Args:
        every_n_epochs: log on epochs divisible by this.
        num_batches: how many validation batches (from the start) to render.
    """

    def __init__(self, every_n_epochs: int = 1, num_batches: int = 1) -> None:
        if every_n_epochs < 1 or num_batches < 1:
            raise ValueError("every_n_epochs and num_batches must be ≥ 1")
        self.every_n_epochs = every_n_epochs
        self.num_batches = num_batches

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if (
            not trainer.is_global_zero
            or trainer.sanity_checking
            or batch_idx >= self.num_batches
            or trainer.current_epoch % self.every_n_epochs
            or not hasattr(pl_module, "render_overlay")
        ):
            return
        loggers = mlflow_loggers(trainer)
        if not loggers:
            return
        image = pl_module.render_overlay(batch, outputs)
        if image is None:
            return
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise TypeError(f"render_overlay must return an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
        key = f"val/overlay_{dataloader_idx}_{batch_idx}"
        for logger in loggers:
            logger.experiment.log_image(logger.run_id, image, key=key, step=trainer.current_epoch)
