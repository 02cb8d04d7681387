"""Writing rendered frames as an animated GIF (PIL) or an H.264 MP4 (PyAV), atomically.

:class:`Mp4Writer` encodes frame by frame (nothing but the encoder's look-ahead is held in memory), with
``libx264`` in ``yuv420p`` — the pixel format every browser and player decodes. 4:2:0 chroma needs even
sizes, so an odd height or width is padded by one pixel (the last row / column repeated). PyAV's wheels
bundle FFmpeg with libx264; OpenCV's ``mp4v`` (MPEG-4 Part 2) path stays available through
``write_mp4(..., codec="mp4v")``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

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


class Mp4Writer:
    """Incremental H.264 MP4 writer (context manager): ``with Mp4Writer(path, fps) as w: w.write(frame)``.

    Frames are ``(H, W, 3) uint8`` RGB, all the same size (fixed by the first frame). The file is written
    to a temporary name next to ``path`` and renamed onto it by :meth:`close` — only when the block ends
    without an exception, so readers never see a half-written video.

    Args:
        path: the ``.mp4`` file to write.
        fps: frame rate (a float such as 29.97 is kept as a fraction).
        crf: x264 constant rate factor (0 = lossless, 23 = x264's default; 18 is visually lossless).
        codec: FFmpeg encoder name.

    Raises:
        DataError: bad fps, a frame of the wrong dtype/shape, no frame written, or an encoder error
            (the message names the file).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 5.0, crf: int = 18, codec: str = "libx264") -> None:
        if fps <= 0:
            raise DataError(f"{path}: fps must be > 0, got {fps}")
        self.path, self.fps, self.crf, self.codec = Path(path), fps, crf, codec
        self.count = 0
        self._atomic: Any = None
        self._tmp: Path | None = None
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _open(self, height: int, width: int) -> None:
        import av

        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
            stream = self._container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
            stream.options = {"crf": str(self.crf)}
            self._stream = stream
        except (av.FFmpegError, ValueError) as err:
            self.abort()
            raise DataError(f"{self.path}: cannot open an {self.codec} MP4 writer ({err})") from err
        self._size = (height, width)

    def write(self, frame: np.ndarray) -> None:
        """Encode one ``(H, W, 3) uint8`` RGB frame."""
        import av

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise DataError(f"{self.path}: frame {self.count} is {frame.dtype} {frame.shape}, expected uint8 (H, W, 3)")
        if self._size is None:
            self._open(*frame.shape[:2])
        if frame.shape[:2] != self._size:
            raise DataError(f"{self.path}: frame {self.count} is {frame.shape[:2]}, the video is {self._size}")
        pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
        if pad[0][1] or pad[1][1]:
            frame = np.pad(frame, pad, mode="edge")
        try:
            packets = self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
            self._container.mux(packets)
        except av.FFmpegError as err:
            self.abort()
            raise DataError(f"{self.path}: encoding frame {self.count} failed ({err})") from err
        self.count += 1

    def close(self) -> None:
        """Flush the encoder, close the file and rename it onto ``path``."""
        if self._container is None:
            if self._atomic is None:
                raise DataError(f"{self.path}: no frames to write")
            return
        import av

        try:
            self._container.mux(self._stream.encode())
            self._container.close()
        except av.FFmpegError as err:
            self.abort()
            raise DataError(f"{self.path}: finishing the video failed ({err})") from err
        self._container = None
        self._atomic.__exit__(None, None, None)  # rename the temporary file onto path

    def abort(self) -> None:
        """Close and delete the temporary file; ``path`` is left as it was."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        if self._atomic is not None and self._tmp is not None:
            with contextlib.suppress(Exception):
                self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._atomic = None


def write_mp4(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float = 5.0, codec: str = "h264") -> None:
    """Write ``frames`` as an MP4: ``codec="h264"`` (default) with :class:`Mp4Writer` (libx264, yuv420p), or
    ``codec="mp4v"`` with OpenCV's ``VideoWriter`` (MPEG-4 Part 2; players outside desktop apps rarely take it).

    Raises:
        DataError: no frames, frames of different sizes, or a writer that cannot be opened (the message names the file).
    """
    _check(frames, path)
    if codec == "h264":
        with Mp4Writer(path, fps) as writer:
            for frame in frames:
                writer.write(frame)
        return
    if codec != "mp4v":
        raise DataError(f"{path}: codec must be 'h264' or 'mp4v', got {codec!r}")
    _write_mp4v(path, frames, fps)


def _write_mp4v(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float) -> None:
    import cv2

    height, width = _check(frames, path)
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if not writer.isOpened():
            raise DataError(f"{path}: OpenCV cannot write video with codec 'mp4v' (write a GIF instead)")
        try:
            for frame in frames:
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        finally:
            writer.release()
