"""Sine encodings against the formula written out element by element."""

from __future__ import annotations

import math

import pytest
import torch

from vidseg_common.models.position_encoding import PositionEmbeddingSine2D, PositionEmbeddingSine3D


def _feature(pos: float, i: int, num_feats: int, temperature: float) -> float:
    freq = temperature ** (2 * (i // 2) / num_feats)
    return math.sin(pos / freq) if i % 2 == 0 else math.cos(pos / freq)


def test_2d_matches_formula_with_padding_and_offset() -> None:
    mask = torch.zeros(1, 3, 5, dtype=torch.bool)
    mask[:, :, 4:] = True  # last column is padding
    module = PositionEmbeddingSine2D(num_feats=6, center_offset=0.5)
    pos = module(mask)
    assert pos.shape == (1, 12, 3, 5)
    y, x, i = 2, 1, 3
    y_norm = (y + 1 - 0.5) / (3 + 1e-6) * 2 * math.pi
    x_norm = (x + 1 - 0.5) / (4 + 1e-6) * 2 * math.pi  # normalised by the 4 valid columns
    assert pos[0, i, y, x].item() == pytest.approx(_feature(y_norm, i, 6, 10000.0), abs=1e-6)
    assert pos[0, 6 + i, y, x].item() == pytest.approx(_feature(x_norm, i, 6, 10000.0), abs=1e-6)


def test_3d_orders_time_y_x() -> None:
    mask = torch.zeros(1, 4, 2, 3, dtype=torch.bool)
    module = PositionEmbeddingSine3D(num_feats=4, temperature=100.0)
    pos = module(mask)
    assert pos.shape == (1, 4, 12, 2, 3)
    t, y, x = 2, 1, 0
    scale = 2 * math.pi
    expected_t = [_feature((t + 1) / (4 + 1e-6) * scale, i, 4, 100.0) for i in range(4)]
    expected_y = [_feature((y + 1) / (2 + 1e-6) * scale, i, 4, 100.0) for i in range(4)]
    expected_x = [_feature((x + 1) / (3 + 1e-6) * scale, i, 4, 100.0) for i in range(4)]
    torch.testing.assert_close(pos[0, t, :, y, x], torch.tensor(expected_t + expected_y + expected_x), atol=1e-6, rtol=0)
