"""Writing rendered frames as an animated GIF (PIL) or an MP4 (OpenCV), atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from vidseg_common.errors import DataError
from vidseg_common.io import atomic_path


def _check(frames: Sequence[np.ndarray], path: str | os.PathLike[str]) -> tuple[int, int]:
    if not frames:
        raise DataError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    for idx, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
            raise DataError(f"{path}: frame {idx} is {frame.dtype} {frame.shape}, expected uint8 {(height, width, 3)}")
    return height, width


def write_gif(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float = 5.0) -> None:
    """Write ``frames`` (each ``(H, W, 3) uint8``) as a looping GIF.

    GIF holds 256 colours per frame, so PIL quantises each frame (adaptive palette): exact colours are in
    the contact sheet PNG, not here. PIL merges identical consecutive frames into one longer frame.
    """
    _check(frames, path)
    if fps <= 0:
        raise DataError(f"{path}: fps must be > 0, got {fps}")
    images = [Image.fromarray(frame) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def write_mp4(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float = 5.0, fourcc: str = "mp4v") -> None:
    """Write ``frames`` as an MP4 with OpenCV's ``VideoWriter`` (codec ``fourcc``; ``mp4v`` ships with opencv wheels).

    Raises:
        DataError: if OpenCV cannot open a writer for that codec (the message names the file).
    """
    import cv2

    height, width = _check(frames, path)
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
        if not writer.isOpened():
            raise DataError(f"{path}: OpenCV cannot write video with codec {fourcc!r} (write a GIF instead)")
        try:
            for frame in frames:
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        finally:
            writer.release()
