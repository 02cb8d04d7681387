"""Shared helpers of the STT tests: a tiny STT-PSP18 (random weights, 4×4 feature maps at 32×32 input)."""

from __future__ import annotations

import pytest
from determinism import seeded_single_thread

from vidseg_stt.module import STTModule


def tiny_module(**overrides) -> STTModule:
    """STT-PSP18 with a 3-frame memory and small windows (fast on CPU).

    The STT output projection is randomly initialised (``stt_zero_init=False``): a zero-initialised block is the
    identity, which would make the streaming/clip comparisons unable to fail.
    """
    options = dict(num_classes=5, backbone="resnet18", nsm_radius=1, top_ratio=0.5, key_start=1, key_end=2,
                   key_expansion=1, num_key_frames=3, num_heads=4, stt_zero_init=False)
    options.update(overrides)
    return STTModule(**options)


@pytest.fixture
def make_stt():
    """The :func:`tiny_module` factory (test files import nothing from conftest)."""
    return tiny_module


_seed_and_threads = pytest.fixture(autouse=True, name="_seed_and_threads")(seeded_single_thread)
