"""Contact sheets: a grid of frames in one image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidseg_common.errors import DataError


def sample_indices(length: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(length)`` (first and last included; all if fewer)."""
    if length < 1:
        return []
    if count >= length:
        return list(range(length))
    if count <= 1:
        return [0]
    return sorted({round(i * (length - 1) / (count - 1)) for i in range(count)})


def contact_sheet(frames: Sequence[np.ndarray], columns: int = 4, gap: int = 2, background: int = 0) -> np.ndarray:
    """Tile ``frames`` (each ``(H, W, 3) uint8``, all the same size) row by row.

    Args:
        frames: the frames, in reading order.
        columns: frames per row (fewer if there are fewer frames).
        gap: pixels between tiles.
        background: grey level of the gaps and of the empty tiles of the last row.

    Returns:
        ``(rows·H + (rows−1)·gap, cols·W + (cols−1)·gap, 3) uint8`` with ``cols = min(columns, len(frames))``.
    """
    if not frames:
        raise DataError("contact sheet: no frames to tile")
    if columns < 1 or gap < 0:
        raise DataError(f"contact sheet: columns must be ≥ 1 and gap ≥ 0 (got {columns}, {gap})")
    height, width = frames[0].shape[:2]
    for idx, frame in enumerate(frames):
        if frame.shape != (height, width, 3):
            raise DataError(f"contact sheet: frame {idx} has shape {frame.shape}, expected {(height, width, 3)}")
    cols = min(columns, len(frames))
    rows = -(-len(frames) // cols)
    sheet = np.full((rows * height + (rows - 1) * gap, cols * width + (cols - 1) * gap, 3), background, np.uint8)
    for idx, frame in enumerate(frames):
        top, left = (idx // cols) * (height + gap), (idx % cols) * (width + gap)
        sheet[top : top + height, left : left + width] = frame
    return sheet
