"""Generator options of the synthetic street scenes that the STT config uses: pole width, corruption strength."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.layouts import render_semantic_video
from vidseg_common.data.synthetic.scenes import SEMANTIC_CLASSES
from vidseg_common.errors import ConfigError

POLE = SEMANTIC_CLASSES.index("pole")
BASE = SyntheticConfig(layout="cityscapes", height=64, width=128, corruption_prob=0.0)


def pole_run_lengths(label: np.ndarray) -> set[int]:
    """Lengths of the horizontal pole runs of one row well above the sidewalk, not touching the frame border."""
    row = label[label.shape[0] // 3] == POLE
    edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    return {int(b - a) for a, b in zip(starts, stops) if a > 0 and b < len(row)}


@pytest.mark.parametrize(("pole_width", "expected"), [(0, 2), (8, 8), (5, 5)])
def test_pole_width(pole_width: int, expected: int) -> None:
    """0 keeps the original rule (max(width // 80, 2) = 2 px at 128 px); otherwise poles are that many px wide."""
    cfg = dataclasses.replace(BASE, pole_width=pole_width)
    lengths: set[int] = set()
    for index in range(4):
        video, _ = render_semantic_video(cfg, 0, index, 2)
        lengths |= pole_run_lengths(video.background_label[0])  # background only: no object in front
    assert lengths == {expected}


def test_corruption_strength_scales_severity_only() -> None:
    """The same frames are corrupted at every strength, clean frames are untouched, strength 2 deviates more."""
    errors = {}
    for strength in (1.0, 2.0):
        cfg = dataclasses.replace(BASE, corruption_prob=0.3, corruption_strength=strength)
        corrupted, labels = render_semantic_video(cfg, 0, 0, 30)
        clean, clean_labels = render_semantic_video(BASE, 0, 0, 30)
        assert np.array_equal(labels, clean_labels)
        diff = np.abs(corrupted.frames.astype(np.int16) - clean.frames.astype(np.int16)).mean(axis=(1, 2, 3))
        errors[strength] = diff
    hit = errors[1.0] > 0
    assert hit.any() and np.array_equal(hit, errors[2.0] > 0)
    assert (errors[2.0][hit] > errors[1.0][hit]).all()


def test_new_options_keep_earlier_cache_keys() -> None:
    """Cache keys of configs at the new options' defaults are those computed before the options existed."""
    assert SyntheticConfig().cache_key() == "0c5c3ebb628b7712"
    assert SyntheticConfig(layout="cityscapes", height=64, width=128, corruption_prob=0.15).cache_key() == "39e4012a9c119efc"
    assert dataclasses.replace(BASE, pole_width=8).cache_key() != BASE.cache_key()
    with pytest.raises(ConfigError, match="corruption_strength"):
        SyntheticConfig(layout="cityscapes", corruption_strength=0.0)
    with pytest.raises(ConfigError, match="pole_width"):
        SyntheticConfig(layout="cityscapes", pole_width=-1)
