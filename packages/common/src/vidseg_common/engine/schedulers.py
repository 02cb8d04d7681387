"""Learning-rate schedules with linear warm-up, stepped once per optimizer step.

One ``LambdaLR`` whose factor is ``warmup(step) × decay(step)``; the factor multiplies each group's own
initial lr, so backbone/offset multipliers are preserved. Step-based milestones can be given in epochs
(``unit: epoch``), converted with the trainer's steps per epoch, so "drop at epoch 40 of 50" (VisTR,
Deformable VisTR) and "poly over all iterations with 1k warm-up" (STT, SSTVOS) are both one config.
``warmup_hold_cosine`` is SpVOS's warm-up → constant → cosine from ``cosine_start_step`` (§IV-B.2: warm-up over
8k iterations, constant to 32k, cosine to the end)::

    scheduler: {name: warmup_hold_cosine, warmup_steps: 8000, warmup_start_factor: 0.05,
                cosine_start_step: 32000, min_lr_ratio: 0.05}

The schedule object is a small callable class, so its state is plain numbers in the checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from vidseg_common.errors import ConfigError

ScheduleName = Literal["constant", "step", "multistep", "poly", "cosine", "warmup_hold_cosine"]
SCHEDULE_NAMES: tuple[str, ...] = ("constant", "step", "multistep", "poly", "cosine", "warmup_hold_cosine")


@dataclass
class SchedulerConfig:
    """Schedule settings as they appear under ``model.scheduler`` in YAML.

    Attributes:
        name: ``constant``, ``step`` (×gamma every ``step_size``), ``multistep`` (×gamma at each milestone),
            ``poly`` ((1 − progress)^power), ``cosine`` (half cosine to ``min_lr_ratio``) or
            ``warmup_hold_cosine`` (after the warm-up, constant until ``cosine_start_step``, then a half cosine
            to ``min_lr_ratio`` at the end of the run).
        warmup_steps: linear warm-up length in optimizer steps (always steps).
        warmup_start_factor: lr factor at step 0 of the warm-up.
        unit: unit of ``step_size`` / ``milestones``: ``epoch`` or ``step``.
        step_size: period of the ``step`` schedule.
        milestones: drop points of ``multistep``.
        gamma: decay factor of ``step`` / ``multistep``.
        power: exponent of ``poly``.
        min_lr_ratio: final lr / base lr of ``poly``, ``cosine`` and ``warmup_hold_cosine``.
        cosine_start_step: optimizer step where the cosine of ``warmup_hold_cosine`` starts (always steps;
            ``warmup_steps ≤ cosine_start_step ≤`` the run's steps).
    """

    name: ScheduleName = "constant"
    warmup_steps: int = 0
    warmup_start_factor: float = 0.001
    unit: Literal["epoch", "step"] = "epoch"
    step_size: int = 1
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    power: float = 0.9
    min_lr_ratio: float = 0.0
    cosine_start_step: int = 0


class WarmupDecay:
    """``factor(step)`` of :class:`SchedulerConfig` for a run of ``total_steps`` optimizer steps."""

    def __init__(self, config: SchedulerConfig, total_steps: int, steps_per_epoch: int) -> None:
        if config.warmup_steps < 0 or not 0 < config.warmup_start_factor <= 1:
            raise ConfigError("scheduler.warmup_steps must be ≥ 0 and warmup_start_factor in (0, 1]")
        if config.name not in SCHEDULE_NAMES:
            raise ConfigError(f"scheduler.name={config.name!r} is not one of {', '.join(SCHEDULE_NAMES)}")
        if config.name in ("poly", "cosine", "warmup_hold_cosine") and total_steps <= 0:
            raise ConfigError(f"scheduler.name={config.name} needs a finite run length (trainer.max_epochs or max_steps)")
        if config.name == "warmup_hold_cosine" and not 0 <= config.warmup_steps <= config.cosine_start_step <= total_steps:
            raise ConfigError(
                f"scheduler.name=warmup_hold_cosine needs 0 ≤ warmup_steps ({config.warmup_steps}) ≤ "
                f"cosine_start_step ({config.cosine_start_step}) ≤ total steps ({total_steps})"
            )
        scale = steps_per_epoch if config.unit == "epoch" else 1
        self.name = config.name
        self.warmup_steps = config.warmup_steps
        self.warmup_start_factor = config.warmup_start_factor
        self.step_size = max(1, config.step_size * scale)
        self.milestones = sorted(m * scale for m in config.milestones)
        self.gamma = config.gamma
        self.power = config.power
        self.min_lr_ratio = config.min_lr_ratio
        self.cosine_start_step = config.cosine_start_step
        self.total_steps = max(1, total_steps)

    def __call__(self, step: int) -> float:
        if self.name == "warmup_hold_cosine":
            return self._warmup_hold_cosine(step)
        warm = 1.0
        if step < self.warmup_steps:
            alpha = step / self.warmup_steps
            warm = self.warmup_start_factor * (1 - alpha) + alpha
        progress = min(1.0, step / self.total_steps)
        if self.name == "constant":
            decay = 1.0
        elif self.name == "step":
            decay = self.gamma ** (step // self.step_size)
        elif self.name == "multistep":
            decay = self.gamma ** sum(step >= m for m in self.milestones)
        elif self.name == "poly":
            decay = self.min_lr_ratio + (1 - self.min_lr_ratio) * (1 - progress) ** self.power
        else:  # cosine
            decay = self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return warm * decay

    def _warmup_hold_cosine(self, step: int) -> float:
        """Warm-up ``start + (1 − start)·α`` (SpVOS's form of it), 1 until ``cosine_start_step``, then the cosine."""
        if step < self.warmup_steps:
            alpha = step / self.warmup_steps
            return self.warmup_start_factor + (1 - self.warmup_start_factor) * alpha
        if step < self.cosine_start_step:
            return 1.0
        span = max(1, self.total_steps - self.cosine_start_step)
        progress = min(1.0, (step - self.cosine_start_step) / span)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer: Optimizer, config: SchedulerConfig, total_steps: int, steps_per_epoch: int) -> LambdaLR:
    """A per-step ``LambdaLR`` implementing ``config`` (call ``.step()`` after every optimizer step)."""
    return LambdaLR(optimizer, WarmupDecay(config, total_steps, steps_per_epoch))
