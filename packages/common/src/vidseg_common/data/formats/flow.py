"""Optical flow files in the Middlebury ``.flo`` format (also used by Sintel and FlyingChairs).

Layout: float32 magic ``202021.25``, int32 width, int32 height, then ``H × W × 2`` float32 (u, v)
in row-major order. ``u`` is the horizontal (x) displacement and ``v`` the vertical (y) one, in pixels.
The synthetic generator stores forward flow ``t → t+1`` as ``<flow_root>/<video>/<frame_t>.flo``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vidseg_common.errors import DataError
from vidseg_common.io import atomic_write_bytes

FLO_MAGIC = np.float32(202021.25)


def read_flo(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.flo`` file as ``(H, W, 2) float32`` (u, v)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"{path}: flow file not found") from err
    if len(raw) < 12 or np.frombuffer(raw[:4], dtype="<f4")[0] != FLO_MAGIC:
        raise DataError(f"{path}: not a Middlebury .flo file (bad magic number)")
    width, height = (int(v) for v in np.frombuffer(raw[4:12], dtype="<i4"))
    expected = 12 + width * height * 2 * 4
    if width <= 0 or height <= 0 or len(raw) != expected:
        raise DataError(f"{path}: header says {width}×{height} but the file has {len(raw)} bytes (expected {expected})")
    return np.frombuffer(raw[12:], dtype="<f4").reshape(height, width, 2).copy()


def write_flo(path: str | os.PathLike[str], flow: np.ndarray) -> None:
    """Write ``flow`` ``(H, W, 2)`` (u, v) as a ``.flo`` file, atomically."""
    flow = np.asarray(flow, dtype="<f4")
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise DataError(f"{path}: flow must be (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    header = FLO_MAGIC.astype("<f4").tobytes() + np.array([width, height], dtype="<i4").tobytes()
    atomic_write_bytes(path, header + np.ascontiguousarray(flow).tobytes())
