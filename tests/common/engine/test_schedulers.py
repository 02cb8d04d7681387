"""Schedules: warm-up then step / multistep / poly / cosine, per optimizer step, epochs converted."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from vidseg_common.engine.schedulers import SchedulerConfig, WarmupDecay, build_scheduler
from vidseg_common.errors import ConfigError


def test_poly_with_warmup_matches_formula() -> None:
    config = SchedulerConfig(name="poly", warmup_steps=10, warmup_start_factor=0.1, power=0.9)
    factor = WarmupDecay(config, total_steps=100, steps_per_epoch=10)
    assert factor(0) == pytest.approx(0.1 * 1.0)
    assert factor(5) == pytest.approx((0.1 * 0.5 + 0.5) * (1 - 0.05) ** 0.9)
    assert factor(50) == pytest.approx(0.5**0.9)
    assert factor(100) == pytest.approx(0.0)


def test_multistep_milestones_in_epochs() -> None:
    config = SchedulerConfig(name="multistep", milestones=[40], gamma=0.1, unit="epoch")
    factor = WarmupDecay(config, total_steps=500, steps_per_epoch=10)
    assert factor(399) == 1.0
    assert factor(400) == pytest.approx(0.1)


def test_cosine_ends_at_min_ratio() -> None:
    config = SchedulerConfig(name="cosine", min_lr_ratio=0.01)
    factor = WarmupDecay(config, total_steps=200, steps_per_epoch=1)
    assert factor(0) == pytest.approx(1.0)
    assert factor(100) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert factor(200) == pytest.approx(0.01)


def test_scheduler_scales_each_group_and_state_is_plain() -> None:
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": [params[0]], "lr": 1.0}, {"params": [params[1]], "lr": 0.1}], lr=1.0)
    scheduler = build_scheduler(optimizer, SchedulerConfig(name="step", step_size=2, unit="step", gamma=0.5), 10, 1)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5, 0.05])
    state = scheduler.state_dict()
    torch.save(state, buffer := __import__("io").BytesIO())
    buffer.seek(0)
    torch.load(buffer, weights_only=True)  # no pickled callables


def test_bad_schedule_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scheduler.name"):
        WarmupDecay(SchedulerConfig(name="exp"), 10, 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="finite run length"):
        WarmupDecay(SchedulerConfig(name="poly"), 0, 1)


def test_warmup_hold_cosine_warms_up_holds_then_decays() -> None:
    """SpVOS §IV-B.2: 1e-6 → 2e-5 linear over 8k steps, constant to 32k, cosine to 1e-6 at 160k."""
    config = SchedulerConfig(name="warmup_hold_cosine", warmup_steps=8000, warmup_start_factor=0.05,
                             cosine_start_step=32000, min_lr_ratio=0.05)
    factor = WarmupDecay(config, total_steps=160000, steps_per_epoch=375)
    assert factor(0) == pytest.approx(0.05)
    assert factor(4000) == pytest.approx(0.525)
    assert factor(8000) == factor(20000) == factor(31999) == factor(32000) == 1.0
    assert factor(96000) == pytest.approx(0.525)  # half-way through the cosine
    assert factor(160000) == pytest.approx(0.05) == factor(170000)
    steps = range(0, 160001, 997)
    assert all(factor(a) >= factor(b) for a, b in itertools.pairwise(steps) if a >= 8000)  # never rises after warm-up
    # without a hold it is the plain cosine
    plain = WarmupDecay(SchedulerConfig(name="cosine", min_lr_ratio=0.1), 200, 1)
    no_hold = WarmupDecay(SchedulerConfig(name="warmup_hold_cosine", min_lr_ratio=0.1), 200, 1)
    assert [no_hold(s) for s in range(0, 201, 10)] == pytest.approx([plain(s) for s in range(0, 201, 10)])


@pytest.mark.parametrize(
    "warmup, start, total", [(8000, 4000, 160000), (10, 300, 200)], ids=["start-before-warmup-end", "start-after-run"]
)
def test_warmup_hold_cosine_bad_steps_are_config_errors(warmup: int, start: int, total: int) -> None:
    config = SchedulerConfig(name="warmup_hold_cosine", warmup_steps=warmup, cosine_start_step=start)
    with pytest.raises(ConfigError, match="cosine_start_step"):
        WarmupDecay(config, total, 1)
    with pytest.raises(ConfigError, match="finite run length"):
        WarmupDecay(SchedulerConfig(name="warmup_hold_cosine"), 0, 1)
