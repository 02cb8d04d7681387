"""SpVOS's learning-rate schedule (§IV-B.2): linear warm-up, constant, then cosine annealing.

"A linear learning rate warm-up from 1e-6 to 2e-5 is applied for the first 8000 iterations, followed by a
cosine annealing schedule starting from 2e-5 at the 32000-th iteration and gradually decaying to 1e-6 at the
end of training" (160 000 iterations). Between 8 000 and 32 000 the rate is constant (implied, vos.md §2.4).
The engine's ``cosine`` schedule decays from step 0, so the module installs this factor instead when
``model.cosine_start_step`` is set.
"""

from __future__ import annotations

import math

from vidseg_common.errors import ConfigError


class WarmupHoldCosine:
    """Factor of the base lr at an optimizer step (a picklable callable for ``LambdaLR``).

    Args:
        warmup_steps: linear warm-up length (8000).
        warmup_start_factor: factor at step 0 (1e-6 / 2e-5 = 0.05).
        cosine_start: step where the cosine starts (32000).
        total_steps: run length (160000).
        min_ratio: final factor (1e-6 / 2e-5 = 0.05).
    """

    def __init__(self, warmup_steps: int, warmup_start_factor: float, cosine_start: int, total_steps: int,
                 min_ratio: float) -> None:
        if not 0 <= warmup_steps <= cosine_start <= total_steps:
            raise ConfigError(f"lr schedule needs 0 ≤ warmup_steps ({warmup_steps}) ≤ cosine_start_step "
                              f"({cosine_start}) ≤ total steps ({total_steps})")
        self.warmup_steps, self.start_factor = warmup_steps, warmup_start_factor
        self.cosine_start, self.total_steps, self.min_ratio = cosine_start, total_steps, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            alpha = step / self.warmup_steps
            return self.start_factor + (1 - self.start_factor) * alpha
        if step < self.cosine_start:
            return 1.0
        span = max(1, self.total_steps - self.cosine_start)
        progress = min(1.0, (step - self.cosine_start) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
