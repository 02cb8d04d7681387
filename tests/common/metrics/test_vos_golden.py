"""J, F, seg2bmap and db_statistics against the golden vectors of docs/reference/vos.md §3.6 (official functions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidseg_common.metrics.vos import (
    boundary_f_measure,
    boundary_tolerance,
    db_statistics,
    decay_bin_edges,
    disk_offsets,
    region_similarity,
    seg2bmap,
)
from vidseg_common.metrics.vos_cpu import seg2bmap_np

H, W = 480, 854


def box_mask(height: int, width: int, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """``(H, W)`` bool mask with ``[rows[0]:rows[1], cols[0]:cols[1]]`` set."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


GT = ((100, 200), (100, 200))


def _pred(case: str) -> torch.Tensor:
    if case == "empty":
        return torch.zeros(H, W, dtype=torch.bool)
    if case.startswith("shift"):
        dx = int(case[5:])
        return box_mask(H, W, (100, 200), (100 + dx, 200 + dx))
    if case == "left_half":
        return box_mask(H, W, (100, 200), (100, 150))
    if case == "grown":
        return box_mask(H, W, (90, 210), (90, 210))
    raise AssertionError(case)


# (prediction, J, F) for the 100×100 GT square in a 480×854 frame.
GOLDEN = [
    ("shift0", 1.0, 1.0),
    ("shift1", 0.980198, 1.0),
    ("shift4", 0.923077, 1.0),
    ("shift8", 0.851852, 1.0),
    ("shift9", 0.834862, 0.54),
    ("shift12", 0.785714, 0.525),
    ("shift20", 0.666667, 0.485),
    ("left_half", 0.5, 0.62),
    ("grown", 0.694444, 0.0),
    ("empty", 0.0, 0.0),
]


@pytest.mark.parametrize(("case", "j_expected", "f_expected"), GOLDEN)
def test_golden_square(case: str, j_expected: float, f_expected: float) -> None:
    gt = box_mask(H, W, *GT)
    pred = _pred(case)
    assert float(region_similarity(gt, pred)) == pytest.approx(j_expected, abs=5e-7)
    assert float(boundary_f_measure(gt, pred)) == pytest.approx(f_expected, abs=5e-7)


def test_golden_empty_cases_and_batching() -> None:
    empty = torch.zeros(H, W, dtype=torch.bool)
    square = box_mask(H, W, *GT)
    gts = torch.stack([empty, empty, square])
    preds = torch.stack([empty, square, empty])
    assert region_similarity(gts, preds).tolist() == [1.0, 0.0, 0.0]
    assert boundary_f_measure(gts, preds).tolist() == [1.0, 0.0, 0.0]
    # Batched evaluation equals frame-by-frame evaluation for every golden case.
    batch = torch.stack([_pred(c) for c, _, _ in GOLDEN])
    f_batch = boundary_f_measure(square.expand_as(batch), batch)
    assert f_batch.tolist() == [float(boundary_f_measure(square, p)) for p in batch]


def test_golden_small_frame_tolerance() -> None:
    assert boundary_tolerance(480, 854) == 8
    assert boundary_tolerance(100, 100) == 2
    gt = box_mask(100, 100, (20, 60), (20, 60))
    pred = box_mask(100, 100, (22, 62), (20, 60))
    assert float(region_similarity(gt, pred)) == pytest.approx(0.904762, abs=5e-7)
    assert float(boundary_f_measure(gt, pred)) == 1.0


def test_disk_matches_skimage_definition() -> None:
    dy, dx = disk_offsets(8)
    assert dy.numel() == 197 and int(dy.abs().max()) == 8 and int(dx.abs().max()) == 8


@pytest.mark.parametrize("impl", ["torch", "numpy"])
def test_seg2bmap_golden(impl: str) -> None:
    def bmap(m: torch.Tensor) -> list[str]:
        out = seg2bmap(m) if impl == "torch" else torch.from_numpy(seg2bmap_np(m.numpy()))
        return ["".join(str(int(v)) for v in row) for row in out]

    m = torch.zeros(5, 6, dtype=torch.bool)
    m[1:3, 1:4] = True
    assert bmap(m) == ["111100", "100100", "111100", "000000", "000000"]
    m = torch.zeros(4, 4, dtype=torch.bool)
    m[2:, 2:] = True
    assert bmap(m) == ["0000", "0111", "0100", "0100"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.linspace(1, 0.5, 10), (0.75, 0.9, 0.388889)),
        ([0.9, 0.8, 0.3, 0.6, 0.7], (0.66, 0.8, 0.2)),
        ([1.0, 0.4, 0.6], (0.666667, 0.666667, 0.1)),
        ([0.7], (0.7, 1.0, 0.0)),
        (np.arange(20) / 20, (0.475, 0.45, -0.7)),
    ],
)
def test_db_statistics_golden(values: list[float], expected: tuple[float, float, float]) -> None:
    assert db_statistics(np.asarray(values)) == pytest.approx(expected, abs=5e-7)


def test_decay_bins_do_not_wrap_past_256_frames() -> None:
    # The official uint8 cast gives [0, 75, 150, 224, 43] for 300 frames; we keep the true indices.
    assert decay_bin_edges(300).tolist() == [0, 75, 150, 224, 299]
    assert decay_bin_edges(100).astype(np.uint8).tolist() == decay_bin_edges(100).tolist()
