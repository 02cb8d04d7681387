"""Shared helpers of the SSTVOS tests: a tiny SSTVOS (ResNet-18, random weights, C = 16, 4×4 attention grid at 32×32)."""

from __future__ import annotations

import pytest
import torch
from determinism import seeded_single_thread

from vidseg_sstvos.module import SSTVOSModule

TINY = dict(
    backbone="resnet18", backbone_output_stride=32, backbone_out_indices=(1, 2, 3), embed_features=("f8", "f16"),
    attention_stride=8, hidden_dim=16, num_encoder_layers=2, num_heads=2, ffn_dim=16, pre_dim=8, stage_channels=(16, 16),
    stage_depths=(1, 1), stage_strides=(1, 2), aspp_channels=16, aspp_dilations=(1, 2), decoder_channels=16, history=2,
)


def tiny_module(**overrides) -> SSTVOSModule:
    """A few-thousand-parameter SSTVOS head on ResNet-18 (fast on CPU)."""
    return SSTVOSModule(**{**TINY, **overrides})


def random_clip(batch: int = 2, frames: int = 5, size: int = 32, objects: int = 2, seed: int = 0):
    """``frames (B, T, 3, H, W)``, ``masks (B, T, H, W)`` with ids ``0..objects`` (a few void pixels), ``num_objects (B,)``."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, frames, 3, size, size, generator=gen)
    masks = torch.randint(0, objects + 1, (batch, frames, size, size), generator=gen)
    masks[:, :, :2, :2] = 255
    return images, masks, torch.full((batch,), objects)


@pytest.fixture
def make_sstvos():
    """The :func:`tiny_module` factory (test files import nothing from conftest)."""
    return tiny_module


@pytest.fixture
def clip():
    """The :func:`random_clip` factory."""
    return random_clip


_seed_and_threads = pytest.fixture(autouse=True, name="_seed_and_threads")(seeded_single_thread)
