"""``VidSegModule``: the base LightningModule of every paper package.

It owns what the five recipes share and what is easy to get subtly wrong: optimizer parameter groups
(:mod:`.param_groups`), per-step schedules with warm-up (:mod:`.schedulers`) and the BatchNorm policy
(:mod:`.batchnorm`). A paper module subclasses it, builds its networks in ``__init__`` and implements
``training_step`` / ``validation_step``; everything here is configured from YAML::

    model:
      optimizer: {name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 1e-4, backbone_lr_mult: 0.1}
      scheduler: {name: poly, power: 0.9, warmup_steps: 1000}
      bn_mode: frozen          # train | eval | frozen
      bn_scope: backbone       # backbone | all

Gradient clipping is the Trainer's (``trainer.gradient_clip_val``), so it is set in the same YAML.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import lightning.pytorch as pl
import torch
from torch import nn

from vidseg_common.engine.batchnorm import BNMode, freeze_batchnorm, set_batchnorm_eval
from vidseg_common.engine.param_groups import OptimizerConfig, build_param_groups, describe_param_groups
from vidseg_common.engine.schedulers import SchedulerConfig, build_scheduler
from vidseg_common.errors import ConfigError
from vidseg_common.weights import WeightRules, load_weights

log = logging.getLogger(__name__)


def _as_config(value: Any, cls: type, key: str) -> Any:
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        try:
            return cls(**value)
        except TypeError as err:
            raise ConfigError(f"model.{key}: {err}") from err
    raise ConfigError(f"model.{key} must be a mapping, got {type(value).__name__}")


class VidSegModule(pl.LightningModule):
    """Base LightningModule: parameter groups, schedules, BN policy, benchmark inputs.

    Args:
        optimizer: :class:`OptimizerConfig` (or a mapping with its fields).
        scheduler: :class:`SchedulerConfig` (or a mapping with its fields).
        bn_mode: ``train`` (ordinary BN), ``eval`` (running statistics fixed, affine trained) or
            ``frozen`` (replaced by ``FrozenBatchNorm2d``: nothing trained).
        bn_scope: apply ``bn_mode`` to the ``backbone`` attribute only, or to ``all`` submodules.
        output_dir: where ``predict`` writes (default ``<trainer.default_root_dir>/predictions``); an output
            location, not a model property, so it is kept out of checkpoints (``predict --ckpt_path`` takes the
            value given on the command line).
        init_weights: a checkpoint to start from: one of this model's own (any format of
            :func:`~vidseg_common.weights.read_checkpoint`) or a released one its :attr:`weight_rules` convert; every
            key is accounted for, or nothing is loaded (see :mod:`vidseg_common.weights`).
    """

    backbone_attr: str = "backbone"
    """Name of the attribute holding the backbone (for ``bn_scope: backbone``)."""

    weight_rules: ClassVar[dict[str, WeightRules]] = {}
    """Released checkpoints this model can start from, by source name (``model.init_weights``,
    ``vidseg weights import``)."""

    def __init__(
        self,
        optimizer: OptimizerConfig | None = None,
        scheduler: SchedulerConfig | None = None,
        bn_mode: BNMode = "train",
        bn_scope: Literal["backbone", "all"] = "backbone",
        output_dir: str | None = None,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_config: OptimizerConfig = _as_config(optimizer, OptimizerConfig, "optimizer")
        self.scheduler_config: SchedulerConfig = _as_config(scheduler, SchedulerConfig, "scheduler")
        if bn_mode not in ("train", "eval", "frozen"):
            raise ConfigError(f"model.bn_mode={bn_mode!r} is not one of train, eval, frozen")
        if bn_scope not in ("backbone", "all"):
            raise ConfigError(f"model.bn_scope={bn_scope!r} is not one of backbone, all")
        self.bn_mode = bn_mode
        self.bn_scope = bn_scope
        self._bn_applied = False
        self._output_dir, self._init_weights, self._weights_loaded = output_dir, init_weights, False
        self.save_hyperparameters()
        for key in ("output_dir", "init_weights"):  # locations, not model properties: not stored in checkpoints
            self.hparams.pop(key, None)
        # Record the effective settings (defaults filled in) as plain dicts: MLflow shows every value, and
        # checkpoints stay loadable with ``torch.load(weights_only=True)``.
        self.hparams["optimizer"] = asdict(self.optimizer_config)
        self.hparams["scheduler"] = asdict(self.scheduler_config)
        for key, value in list(self.hparams.items()):
            if is_dataclass(value) and not isinstance(value, type):
                self.hparams[key] = asdict(value)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> Self:
        """The module of a Lightning checkpoint, on CPU in eval mode, loaded with ``torch.load(weights_only=True)``.

        Rebuilt from the checkpoint's ``hyper_parameters`` (LightningCLI's private ``_…`` keys dropped), with the
        BatchNorm policy applied before the weights load (``frozen`` checkpoints hold FrozenBatchNorm buffers).
        Lightning's ``load_from_checkpoint`` would unpickle arbitrary objects instead.
        """
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        module = cls(**{k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")})
        module.configure_model()
        module.load_state_dict(ckpt["state_dict"])
        return module.eval()

    @property
    def output_dir(self) -> Path:
        """Folder of ``predict``'s outputs: ``model.output_dir`` or ``<trainer.default_root_dir>/predictions``."""
        if self._output_dir:
            return Path(self._output_dir)
        return Path(self.trainer.default_root_dir if self._trainer is not None else ".") / "predictions"

    @property
    def total_steps(self) -> int:
        """Planned optimizer steps of the run (the trainer's ``estimated_stepping_batches``; 1 outside a trainer)."""
        return max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1

    # ------------------------------------------------------------------ BatchNorm policy
    def _bn_target(self) -> tuple[nn.Module | None, str | None]:
        if self.bn_scope == "all":
            return self, None
        return getattr(self, self.backbone_attr, None), self.backbone_attr

    def configure_model(self) -> None:
        """Apply ``bn_mode`` once, then load ``init_weights`` once, before optimizers are built and checkpoints are
        restored (a ``--ckpt_path`` checkpoint still wins)."""
        if not self._bn_applied and self.bn_mode != "train":
            target, attr = self._bn_target()
            if target is None:
                raise ConfigError(f"model.bn_scope=backbone but {type(self).__name__} has no '{self.backbone_attr}' attribute")
            if self.bn_mode == "frozen":
                frozen = freeze_batchnorm(target)
                if attr is not None and frozen is not target:
                    setattr(self, attr, frozen)
        self._bn_applied = True
        if self._init_weights and not self._weights_loaded:
            conversion = load_weights(self, self._init_weights, self.weight_rules)
            log.info("model.init_weights=%s: %s", self._init_weights, conversion.summary())
            self._weights_loaded = True

    def train(self, mode: bool = True) -> VidSegModule:
        super().train(mode)
        if mode and self.bn_mode == "eval":
            target, _ = self._bn_target()
            if target is not None:
                set_batchnorm_eval(target)
        return self

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        config = self.optimizer_config
        groups = build_param_groups(self, config)
        if not groups:
            raise ConfigError(f"{type(self).__name__} has no trainable parameters")
        for line in describe_param_groups(groups):
            log.info("param group %s", line)
        name = config.name.lower()
        if name == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, fused=config.fused
            )
        elif name in ("adam", "adamw"):
            cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
            optimizer = cls(groups, lr=config.lr, betas=tuple(config.betas), fused=config.fused)
        else:
            raise ConfigError(f"model.optimizer.name={config.name!r} is not one of sgd, adam, adamw")
        total_steps = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 0
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        steps_per_epoch = max(1, total_steps // max_epochs) if max_epochs and max_epochs > 0 else 1
        if self.scheduler_config.unit == "epoch" and self.scheduler_config.name in ("step", "multistep") and not (
            max_epochs and max_epochs > 0
        ):
            raise ConfigError("scheduler.unit=epoch needs trainer.max_epochs; use unit: step with max_steps")
        scheduler = build_scheduler(optimizer, self.scheduler_config, total_steps, steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------------ benchmarking
    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """Inputs of one forward pass at the given size (``vidseg-<paper> benchmark``).

        The default is ``(frames,)`` with ``frames: (B, T, 3, H, W)``; models whose forward needs more
        (first-frame masks, reference labels) override it.
        """
        return (torch.rand(batch_size, num_frames, 3, height, width, device=self.device),)

    def benchmark_forward(self, *inputs: Any) -> Any:
        """The computation timed by ``benchmark`` (default: ``self(*inputs)``)."""
        return self(*inputs)
