"""Shared helpers of the SpVOS tests: a tiny network (ResNet-18 query encoder, narrow memory/decoder) on CPU."""

from __future__ import annotations

import pytest
from determinism import seeded_single_thread

from vidseg_spvos.model import SpVOSNet
from vidseg_spvos.module import SpVOSModule

TINY = dict(key_backbone="resnet18", value_dim=32, decoder_channels=(32, 16, 16))


def tiny_net(**overrides) -> SpVOSNet:
    """SpVOS with a ResNet-18 query encoder, ``C_v = 32`` and a 32/16/16 decoder (random weights)."""
    return SpVOSNet(**{**TINY, **overrides})


def tiny_module(**overrides) -> SpVOSModule:
    """:class:`SpVOSModule` around the tiny network."""
    return SpVOSModule(**{**TINY, **overrides})


@pytest.fixture
def make_net():
    """The :func:`tiny_net` factory (test files import nothing from conftest)."""
    return tiny_net


@pytest.fixture
def make_module():
    """The :func:`tiny_module` factory."""
    return tiny_module


_seed_and_threads = pytest.fixture(autouse=True, name="_seed_and_threads")(seeded_single_thread)
