"""``VideoSource``: the frames of a user's video file (PyAV) or of a folder of frame images, in order.

A video file (``.mp4``, ``.mov``, ``.webm``, ``.mkv``) is decoded lazily with PyAV (its wheels bundle FFmpeg,
H.264 / HEVC / VP9 / AV1 decoders included); a folder is read as its ``.jpg`` / ``.jpeg`` / ``.png`` files sorted
by name. Iteration yields ``(index, frame)``: ``index`` is the frame's position in the source (0-based, before
``every`` / ``start`` are applied), ``frame`` is ``(H, W, 3) uint8`` RGB. Rotation metadata of phone videos is
not applied (frames come as stored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidseg_common.data.formats.common import read_rgb
from vidseg_common.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def resize_max_side(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink ``frame (H, W, C)`` so its long side is at most ``max_side`` (aspect kept, ``INTER_AREA``); never enlarges."""
    if max_side is None:
        return frame
    height, width = frame.shape[:2]
    if max(height, width) <= max_side:
        return frame
    scale = max_side / max(height, width)
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class VideoSource:
    """Frames of a video file or of a folder of frames.

    Args:
        path: a video file or a folder of ``.jpg`` / ``.png`` frames (sorted by name).
        every: keep one frame in ``every`` (counted from ``start``).
        max_side: shrink frames so the long side is at most this (``None``: original size).
        start: index of the first frame kept.
        end: index one past the last frame kept (``None``: to the end).

    Raises:
        DataError: missing path, unknown suffix, a file FFmpeg cannot open or decode (naming the frame index where
            decoding stopped), an empty folder, or a selection without frames.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        every: int = 1,
        max_side: int | None = None,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        self.path = Path(path)
        if every < 1 or start < 0 or (end is not None and end <= start) or (max_side is not None and max_side < 1):
            raise DataError(f"{self.path}: need every ≥ 1, start ≥ 0, end > start and max_side ≥ 1 "
                            f"(got every={every}, start={start}, end={end}, max_side={max_side})")
        self.every, self.max_side, self.start, self.end = every, max_side, start, end
        if self.path.is_dir():
            self.files: list[Path] | None = sorted(p for p in self.path.iterdir()
                                                   if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
            if not self.files:
                raise DataError(f"{self.path}: folder holds no {'/'.join(FRAME_SUFFIXES)} frames")
            self.total: int | None = len(self.files)
            self.source_fps: float | None = None
            self.source_size = read_rgb(self.files[0]).shape[:2]
        elif self.path.is_file():
            if self.path.suffix.lower() not in VIDEO_SUFFIXES:
                raise DataError(f"{self.path}: not a video file ({', '.join(VIDEO_SUFFIXES)}) nor a folder of frames")
            self.files = None
            container = self._open()
            try:
                stream = container.streams.video[0]
                self.total = int(stream.frames) or None  # 0: the container does not say
                rate = stream.average_rate or stream.guessed_rate
                self.source_fps = float(rate) if rate else None
                self.source_size = (int(stream.codec_context.height), int(stream.codec_context.width))
            finally:
                container.close()
        else:
            raise DataError(f"{self.path}: no such video file or frame folder")

    @property
    def name(self) -> str:
        """The video's name: the file stem or the folder name."""
        return self.path.stem if self.files is None else self.path.name

    @property
    def fps(self) -> float | None:
        """Frame rate of the kept frames (the source's divided by ``every``); ``None`` for a folder."""
        return None if self.source_fps is None else self.source_fps / self.every

    def _open(self) -> Any:
        import av

        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as err:
            raise DataError(f"{self.path}: cannot open the video ({err})") from err
        if not container.streams.video:
            container.close()
            raise DataError(f"{self.path}: the file holds no video stream")
        return container

    def _kept(self, index: int) -> bool:
        return index >= self.start and (index - self.start) % self.every == 0

    def __len__(self) -> int:
        """Frames the iteration yields; ``TypeError`` when the container does not record its frame count."""
        if self.total is None:
            raise TypeError(f"{self.path}: the container does not record its frame count")
        stop = self.total if self.end is None else min(self.end, self.total)
        return max(0, -(-(stop - self.start) // self.every))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        count = 0
        for index, frame in (self._iter_folder() if self.files is not None else self._iter_video()):
            count += 1
            yield index, resize_max_side(frame, self.max_side)
        if count == 0:
            raise DataError(f"{self.path}: no frames selected (start={self.start}, end={self.end}, every={self.every}; "
                            f"the source has {self.total if self.total is not None else 'an unknown number of'} frames)")

    def _iter_folder(self) -> Iterator[tuple[int, np.ndarray]]:
        assert self.files is not None
        for index, file in enumerate(self.files[self.start : self.end]):
            index += self.start
            if self._kept(index):
                yield index, read_rgb(file)

    def _iter_video(self) -> Iterator[tuple[int, np.ndarray]]:
        import av

        container = self._open()
        index = 0
        try:
            stream = container.streams.video[0]
            decoded = container.decode(stream)
            while self.end is None or index < self.end:
                try:
                    frame = next(decoded)
                except StopIteration:
                    break
                except av.FFmpegError as err:
                    raise DataError(f"{self.path}: decoding stopped at frame {index} ({err})") from err
                if self._kept(index):
                    yield index, frame.to_ndarray(format="rgb24")
                index += 1
        finally:
            container.close()

    def read_all(self) -> tuple[list[int], np.ndarray]:
        """All kept frames at once: ``(indices, frames (T, H, W, 3) uint8)`` (the whole video in memory)."""
        indices, frames = [], []
        for index, frame in self:
            indices.append(index)
            frames.append(frame)
        return indices, np.stack(frames)
