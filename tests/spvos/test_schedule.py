"""SpVOS §IV-B.2 learning rate: 1e-6 → 2e-5 linear over 8k, constant to 32k, cosine to 1e-6 at 160k."""

from __future__ import annotations

import pytest

from vidseg_common.errors import ConfigError
from vidseg_spvos.schedule import WarmupHoldCosine


def test_paper_schedule() -> None:
    lr = 2e-5
    factor = WarmupHoldCosine(8000, 1e-6 / lr, 32000, 160000, 1e-6 / lr)
    assert lr * factor(0) == pytest.approx(1e-6)
    assert lr * factor(4000) == pytest.approx((1e-6 + 2e-5) / 2)
    assert lr * factor(8000) == pytest.approx(2e-5)
    assert lr * factor(31999) == pytest.approx(2e-5)
    assert lr * factor(96000) == pytest.approx((2e-5 + 1e-6) / 2)  # half-way through the cosine
    assert lr * factor(160000) == pytest.approx(1e-6)


def test_bad_schedule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cosine_start_step"):
        WarmupHoldCosine(8000, 0.05, 4000, 160000, 0.05)
