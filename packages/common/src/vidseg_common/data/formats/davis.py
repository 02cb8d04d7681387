"""DAVIS-2017 layout: reader, writer and prediction writer (docs/reference/vos.md §3.1).

Layout::

    <root>/JPEGImages/{480p,Full-Resolution}/<video>/<frame:05d>.jpg
    <root>/Annotations/{480p,Full-Resolution}/<video>/<frame:05d>.png   palette PNG, 0 bg, 1..K, 255 void
    <root>/ImageSets/2017/{train,val,test-dev}.txt                      one video per line

As in davis2017-evaluation, ``num_objects`` is the largest id in the first annotation; ids must be
contiguous ``1..K`` over the video. DAVIS-2016-style 0/255 masks are rejected unless
``binary_255="convert"`` (never read as object 255).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from vidseg_common.data.formats.common import (
    check_contiguous_ids,
    check_same_size,
    list_frames,
    read_list_file,
    read_rgb,
    write_rgb,
)
from vidseg_common.data.formats.png import VOID_ID, read_index_png, write_index_png
from vidseg_common.data.video import VOSVideo
from vidseg_common.errors import DataError
from vidseg_common.io import atomic_write_text, resolve_inside

RESOLUTIONS = ("480p", "Full-Resolution")


class DavisReader:
    """Read a DAVIS-2017 folder.

    Args:
        root: dataset root (holding ``JPEGImages``, ``Annotations``, ``ImageSets``).
        resolution: ``"480p"`` or ``"Full-Resolution"``.
        year: ImageSets sub-folder (``"2017"``).
        binary_255: ``"reject"`` or ``"convert"`` DAVIS-2016-style 0/255 masks.
    """

    def __init__(
        self,
        root: str | Path,
        resolution: str = "480p",
        year: str = "2017",
        binary_255: Literal["reject", "convert"] = "reject",
    ) -> None:
        if resolution not in RESOLUTIONS:
            raise DataError(f"DAVIS resolution {resolution!r} is not one of {RESOLUTIONS}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: DAVIS root not found")
        self.resolution = resolution
        self.year = year
        self.binary_255: Literal["reject", "convert"] = binary_255

    def videos(self, split: str) -> list[str]:
        """Video names of ``ImageSets/<year>/<split>.txt``."""
        path = self.root / "ImageSets" / self.year / f"{split}.txt"
        names = read_list_file(path, "DAVIS ImageSets list")
        for name in names:
            resolve_inside(self.root / "JPEGImages" / self.resolution, name, f"video name in {path}")
        return names

    def frame_dir(self, video: str) -> Path:
        return resolve_inside(self.root / "JPEGImages" / self.resolution, video, "DAVIS video")

    def annotation_dir(self, video: str) -> Path:
        return resolve_inside(self.root / "Annotations" / self.resolution, video, "DAVIS video")

    def frame_names(self, video: str) -> list[str]:
        """Sorted frame stems of ``video`` (from ``JPEGImages``)."""
        return [p.stem for p in list_frames(self.frame_dir(video), (".jpg", ".jpeg"), f"DAVIS video {video!r}")]

    def read_frame(self, video: str, frame: str) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB frame."""
        return read_rgb(self.frame_dir(video) / f"{frame}.jpg")

    def read_mask(self, video: str, frame: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """``(H, W) uint8`` ids of one annotation; checked against ``frame_shape`` if given."""
        path = self.annotation_dir(video) / f"{frame}.png"
        if not path.is_file():
            raise DataError(f"{path}: annotation not found for frame {frame!r} of DAVIS video {video!r}")
        mask = read_index_png(path, binary_255=self.binary_255)
        if frame_shape is not None:
            check_same_size(mask, frame_shape, path, self.frame_dir(video) / f"{frame}.jpg")
        return mask

    def read_video(self, video: str, first_frame_only: bool = False) -> VOSVideo:
        """Read a whole video; every frame must have an annotation unless ``first_frame_only``."""
        names = self.frame_names(video)
        frames = np.stack([self.read_frame(video, n) for n in names])
        masks = np.full(frames.shape[:3], VOID_ID, dtype=np.uint8)
        annotated = np.zeros(len(names), dtype=bool)
        for t, name in enumerate(names if not first_frame_only else names[:1]):
            masks[t] = self.read_mask(video, name, frames.shape[1:3])
            annotated[t] = True
        num_objects = int(masks[0][masks[0] != VOID_ID].max(initial=0))
        used = np.unique(masks[annotated])
        k = check_contiguous_ids(used.tolist(), str(self.annotation_dir(video)))
        if k > num_objects:
            raise DataError(
                f"{self.annotation_dir(video)}: object ids up to {k} appear but the first frame "
                f"{names[0]}.png holds only {num_objects} objects (DAVIS requires all objects in frame 0)"
            )
        first = {o: 0 for o in range(1, num_objects + 1)}
        return VOSVideo(video, names, frames, masks, annotated, num_objects, first)


def write_davis_video(
    root: str | Path,
    video: str,
    frame_names: list[str],
    frames: np.ndarray,
    masks: np.ndarray | None,
    resolution: str = "480p",
    jpeg_quality: int = 95,
) -> None:
    """Write ``frames (T, H, W, 3) uint8`` as JPEGs and ``masks (T, H, W)`` as palette PNGs."""
    root = Path(root)
    frame_dir = resolve_inside(root / "JPEGImages" / resolution, video, "DAVIS video")
    for name, frame in zip(frame_names, frames):
        write_rgb(frame_dir / f"{name}.jpg", frame, jpeg_quality)
    if masks is not None:
        write_vos_masks(root / "Annotations" / resolution, video, frame_names, masks)


def write_vos_masks(out_dir: str | Path, video: str, frame_names: list[str], masks: np.ndarray) -> list[str]:
    """Write ``masks (T, H, W)`` ids as ``<out_dir>/<video>/<frame>.png`` (DAVIS palette, atomically) — also the
    prediction format of the VOS packages. Returns the written paths."""
    video_dir = resolve_inside(out_dir, video, "video")
    if len(frame_names) != len(masks):
        raise DataError(f"{video_dir}: {len(frame_names)} frame names but {len(masks)} masks")
    paths = []
    for name, mask in zip(frame_names, masks):
        path = resolve_inside(video_dir, f"{name}.png", "frame")
        write_index_png(path, mask)
        paths.append(str(path))
    return paths


def write_davis_split(root: str | Path, split: str, videos: list[str], year: str = "2017") -> None:
    """Write ``ImageSets/<year>/<split>.txt``."""
    atomic_write_text(Path(root) / "ImageSets" / year / f"{split}.txt", "".join(f"{v}\n" for v in videos))
