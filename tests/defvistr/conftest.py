"""Shared helpers of the defvistr tests: a tiny model configuration and a synthetic-like VIS clip."""

from __future__ import annotations

from typing import Any

import pytest
import torch

TINY: dict[str, Any] = dict(
    backbone="resnet18", hidden_dim=48, num_heads=8, num_encoder_layers=1, num_decoder_layers=2,
    ffn_dim=64, dropout=0.0, num_points=4,
)
NET_NAMES = {"num_heads": "n_heads", "ffn_dim": "dim_feedforward", "num_points": "n_points"}  # DeformableVisTR's own


def make_targets(batch: int, frames: int, height: int, width: int, num_classes: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Two rectangles per clip moving one pixel per frame; the second is absent on frame 1 (if T > 1)."""
    gen = torch.Generator().manual_seed(seed)
    targets = []
    for _ in range(batch):
        masks = torch.zeros(2, frames, height, width, dtype=torch.bool)
        for g in range(2):
            y0 = int(torch.randint(0, height // 2, (1,), generator=gen))
            x0 = int(torch.randint(0, width // 2, (1,), generator=gen))
            for t in range(frames):
                masks[g, t, y0 + t: y0 + t + height // 3, x0 + t: x0 + t + width // 3] = True
        if frames > 1:
            masks[1, 1] = False
        valid = masks.flatten(2).any(2)
        boxes = torch.zeros(2, frames, 4)
        for g in range(2):
            for t in range(frames):
                if valid[g, t]:
                    ys, xs = masks[g, t].nonzero(as_tuple=True)
                    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
                    boxes[g, t] = torch.stack([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
                                               (x2 - x1) / width, (y2 - y1) / height]).float()
        labels = torch.randint(1, num_classes, (2,), generator=gen)
        targets.append({"labels": labels, "masks": masks, "boxes": boxes, "valid": valid})
    return targets


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    """``DefVisTRModule`` options (the shared ``model.*`` keys, docs/config_keys.md)."""
    return dict(TINY)


@pytest.fixture
def tiny_net_config() -> dict[str, Any]:
    """The same tiny network as ``DeformableVisTR`` arguments."""
    return {NET_NAMES.get(key, key): value for key, value in TINY.items()}


@pytest.fixture(name="make_targets")
def make_targets_fixture() -> Any:
    """:func:`make_targets` as a fixture (test modules cannot import this conftest under importlib mode)."""
    return make_targets
