"""SpVOS §IV-B.2 learning rate: 1e-6 → 2e-5 linear over 8k, constant to 32k, cosine to 1e-6 at 160k — the engine's
``warmup_hold_cosine`` schedule as ``experiments/spvos/davis17.yaml`` configures it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vidseg_common.engine.schedulers import SchedulerConfig, WarmupDecay
from vidseg_common.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_paper_schedule() -> None:
    model = yaml.safe_load((REPO / "experiments/spvos/davis17.yaml").read_text())["model"]
    lr = model["optimizer"]["lr"]
    factor = WarmupDecay(SchedulerConfig(**model["scheduler"]), total_steps=160000, steps_per_epoch=1)
    assert lr * factor(0) == pytest.approx(1e-6)
    assert lr * factor(4000) == pytest.approx((1e-6 + 2e-5) / 2)
    assert lr * factor(8000) == pytest.approx(2e-5)
    assert lr * factor(31999) == pytest.approx(2e-5)
    assert lr * factor(96000) == pytest.approx((2e-5 + 1e-6) / 2)  # half-way through the cosine
    assert lr * factor(160000) == pytest.approx(1e-6)


def test_bad_schedule_is_a_config_error() -> None:
    config = SchedulerConfig(name="warmup_hold_cosine", warmup_steps=8000, warmup_start_factor=0.05,
                             cosine_start_step=4000, min_lr_ratio=0.05, unit="step")
    with pytest.raises(ConfigError, match="cosine_start_step"):
        WarmupDecay(config, 160000, steps_per_epoch=1)
