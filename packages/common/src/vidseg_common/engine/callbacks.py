"""Engine callbacks: stop on a non-finite loss, log prediction overlays, benchmark a trained model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from vidseg_common.engine.benchmark import benchmark_module
from vidseg_common.engine.mlflow import mlflow_loggers
from vidseg_common.errors import ConfigError, NonFiniteLossError


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

    The module supplies the picture: ``render_overlay(batch, outputs) -> np.ndarray | None`` returning
    ``(H, W, 3) uint8`` (the task modules of :mod:`vidseg_common.tasks` implement it, drawing with
    :mod:`vidseg_common.viz`, the renderer of ``vidseg visualize``). Modules without it are skipped.

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


class BenchmarkOnFitEnd(Callback):
    """After ``fit``, log the fit wall time and the model's params / FLOPs / fps into the same MLflow run.

    Rank 0 only: ``time/fit_s`` (seconds from ``on_fit_start`` to ``on_fit_end``) and the ``benchmark/*``
    metrics of :func:`~vidseg_common.engine.benchmark.benchmark_module` on the module's ``example_inputs``
    (plus ``benchmark.json`` and the tag ``benchmark/input``), so that ``vidseg compare`` shows FLOPs and fps
    for training runs. Opt-in (``--trainer.callbacks+=vidseg_common.engine.callbacks.BenchmarkOnFitEnd``);
    the cost is ``warmup + iters + 1`` forward passes at the given size. The module is put back in the
    train/eval mode it had.

    Args:
        batch_size: clips per forward pass.
        num_frames: frames per clip; ``None`` → ``num_frames`` of the module or the datamodule (attribute
            or hyperparameter), checked at setup.
        height: input height.
        width: input width.
        warmup: untimed forward passes.
        iters: timed forward passes.
    """

    def __init__(self, batch_size: int = 1, num_frames: int | None = None, height: int = 96, width: int = 160,
                 warmup: int = 1, iters: int = 3) -> None:
        if min(batch_size, height, width, iters) < 1 or warmup < 0 or (num_frames is not None and num_frames < 1):
            raise ConfigError("BenchmarkOnFitEnd: batch_size, num_frames, height, width, iters must be ≥ 1, warmup ≥ 0")
        self.batch_size, self.num_frames, self.height, self.width = batch_size, num_frames, height, width
        self.warmup, self.iters = warmup, iters
        self._start: float | None = None
        self._num_frames = num_frames or 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for name in ("example_inputs", "benchmark_forward"):
            if not hasattr(pl_module, name):
                raise ConfigError(f"BenchmarkOnFitEnd: {type(pl_module).__name__} does not define {name}()")
        self._num_frames = self.num_frames or self._find_num_frames(pl_module, getattr(trainer, "datamodule", None))

    @staticmethod
    def _find_num_frames(*owners: Any) -> int:
        for owner in owners:
            hparams = getattr(owner, "hparams", None)
            for value in (getattr(owner, "num_frames", None), hparams.get("num_frames") if hparams else None):
                if isinstance(value, int) and value >= 1:
                    return value
        raise ConfigError("BenchmarkOnFitEnd: set num_frames (neither the module nor the datamodule has one)")

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loggers = mlflow_loggers(trainer)
        if not trainer.is_global_zero or not loggers:
            return
        fit_s = time.perf_counter() - (self._start if self._start is not None else time.perf_counter())
        was_training = pl_module.training
        result = benchmark_module(pl_module, batch_size=self.batch_size, num_frames=self._num_frames,
                                  height=self.height, width=self.width, warmup=self.warmup, iters=self.iters)
        pl_module.train(was_training)
        size = f"B={result.batch_size} T={result.num_frames} {result.height}x{result.width} on {result.device}"
        for logger in loggers:
            logger.log_metrics({"time/fit_s": fit_s, **result.as_metrics()}, step=trainer.global_step)
            logger.experiment.log_dict(logger.run_id, result.as_dict(), "benchmark.json")
            logger.experiment.set_tag(logger.run_id, "benchmark/input", size)
