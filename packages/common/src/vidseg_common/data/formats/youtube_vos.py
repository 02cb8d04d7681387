"""YouTube-VOS 2018/2019 layout: reader and writer (docs/reference/vos.md §3.7).

Layout::

    <root>/<split>/JPEGImages/<video>/<frame:05d>.jpg      sparse frames (every 5th of the 30 fps video)
    <root>/<split>/Annotations/<video>/<frame:05d>.png     palette PNGs (train: every sparse frame;
                                                           valid: only the frame where objects first appear,
                                                           holding just those new objects)
    <root>/<split>/meta.json                               {"videos": {vid: {"objects": {"1": {"category", "frames"}}}}}
    <root>/<split>_all_frames/JPEGImages/<video>/...       dense frames (``valid_all_frames``), optional

Objects can first appear after frame 0 (``VOSVideo.first_frame``). With ``all_frames=True`` frames are
read from ``<split>_all_frames`` (inference on dense frames, scoring on the sparse ones: STCN#142).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidseg_common.data.formats.common import (
    check_contiguous_ids,
    check_same_size,
    list_frames,
    read_rgb,
    write_rgb,
)
from vidseg_common.data.formats.davis import write_vos_masks
from vidseg_common.data.formats.png import VOID_ID, read_index_png
from vidseg_common.data.video import VOSVideo
from vidseg_common.errors import DataError
from vidseg_common.io import atomic_write_text, resolve_inside


class YouTubeVOSReader:
    """Read one split of a YouTube-VOS folder.

    Args:
        root: dataset root holding ``<split>/``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        all_frames: read frames from ``<split>_all_frames`` (dense) instead of the sparse folder.
    """

    def __init__(self, root: str | Path, split: str = "train", all_frames: bool = False) -> None:
        self.root = Path(root)
        self.split = split
        self.all_frames = all_frames
        self.meta_path = self.root / split / "meta.json"
        if not self.meta_path.is_file():
            raise DataError(f"{self.meta_path}: YouTube-VOS meta.json not found")
        try:
            meta = json.loads(self.meta_path.read_text())
            self.meta: dict[str, dict] = meta["videos"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{self.meta_path}: not a YouTube-VOS meta.json (need a 'videos' object): {err}") from err
        for video, info in self.meta.items():
            resolve_inside(self.root / split / "JPEGImages", video, f"video name in {self.meta_path}")
            if "objects" not in info:
                raise DataError(f"{self.meta_path}: video {video!r} has no 'objects' key")
            check_contiguous_ids([int(k) for k in info["objects"]], f"{self.meta_path} video {video!r}")

    def videos(self) -> list[str]:
        return sorted(self.meta)

    def frame_dir(self, video: str) -> Path:
        split_dir = f"{self.split}_all_frames" if self.all_frames else self.split
        return resolve_inside(self.root / split_dir / "JPEGImages", video, "YouTube-VOS video")

    def annotation_dir(self, video: str) -> Path:
        return resolve_inside(self.root / self.split / "Annotations", video, "YouTube-VOS video")

    def frame_names(self, video: str) -> list[str]:
        return [p.stem for p in list_frames(self.frame_dir(video), (".jpg", ".jpeg"), f"YouTube-VOS video {video!r}")]

    def annotated_names(self, video: str) -> list[str]:
        """Stems of the annotation PNGs present for ``video``."""
        folder = self.annotation_dir(video)
        return [p.stem for p in list_frames(folder, (".png",), f"YouTube-VOS annotation folder of {video!r}")]

    def objects(self, video: str) -> dict[int, dict]:
        """``{object id: {"category": str, "frames": [stems]}}`` from meta.json."""
        return {int(k): v for k, v in self.meta[video]["objects"].items()}

    def read_frame(self, video: str, frame: str) -> np.ndarray:
        return read_rgb(self.frame_dir(video) / f"{frame}.jpg")

    def read_mask(self, video: str, frame: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
        path = self.annotation_dir(video) / f"{frame}.png"
        if not path.is_file():
            raise DataError(f"{path}: annotation not found for frame {frame!r} of YouTube-VOS video {video!r}")
        mask = read_index_png(path)
        if frame_shape is not None:
            check_same_size(mask, frame_shape, path, self.frame_dir(video) / f"{frame}.jpg")
        return mask

    def read_video(self, video: str) -> VOSVideo:
        """Frames, the annotations that exist (void elsewhere) and each object's first annotated frame."""
        names = self.frame_names(video)
        index = {n: i for i, n in enumerate(names)}
        frames = np.stack([self.read_frame(video, n) for n in names])
        masks = np.full(frames.shape[:3], VOID_ID, dtype=np.uint8)
        annotated = np.zeros(len(names), dtype=bool)
        for name in self.annotated_names(video):
            if name not in index:
                raise DataError(f"{self.annotation_dir(video) / (name + '.png')}: no frame {name}.jpg in {self.frame_dir(video)}")
            masks[index[name]] = self.read_mask(video, name, frames.shape[1:3])
            annotated[index[name]] = True
        objects = self.objects(video)
        first: dict[int, int] = {}
        for obj, info in objects.items():
            if not info.get("frames"):
                raise DataError(f"{self.meta_path}: object {obj} of video {video!r} lists no frames")
            start = info["frames"][0]
            if start not in index:
                raise DataError(f"{self.meta_path}: object {obj} of {video!r} starts at {start!r}, not a frame of {self.frame_dir(video)}")
            first[obj] = index[start]
        used = np.unique(masks[annotated])
        check_contiguous_ids(used.tolist(), str(self.annotation_dir(video)))
        if used[(used != 0) & (used != VOID_ID)].size and int(used[used != VOID_ID].max()) > len(objects):
            raise DataError(f"{self.annotation_dir(video)}: masks hold ids beyond the {len(objects)} objects of meta.json")
        return VOSVideo(video, names, frames, masks, annotated, len(objects), first)


def write_youtube_vos_video(
    root: str | Path,
    split: str,
    video: str,
    frame_names: list[str],
    frames: np.ndarray,
    annotated_names: list[str],
    masks: np.ndarray,
    all_frames: bool = False,
    jpeg_quality: int = 95,
) -> None:
    """Write ``frames (T, H, W, 3)`` and the annotations ``masks (A, H, W)`` of ``annotated_names``."""
    split_dir = f"{split}_all_frames" if all_frames else split
    frame_dir = resolve_inside(Path(root) / split_dir / "JPEGImages", video, "YouTube-VOS video")
    for name, frame in zip(frame_names, frames):
        write_rgb(frame_dir / f"{name}.jpg", frame, jpeg_quality)
    if len(annotated_names):
        write_vos_masks(Path(root) / split / "Annotations", video, annotated_names, masks)


def write_youtube_vos_meta(root: str | Path, split: str, videos: dict[str, dict[int, dict]]) -> None:
    """Write ``<split>/meta.json`` from ``{video: {object id: {"category": str, "frames": [stems]}}}``."""
    meta = {"videos": {v: {"objects": {str(k): objs[k] for k in sorted(objs)}} for v, objs in sorted(videos.items())}}
    atomic_write_text(Path(root) / split / "meta.json", json.dumps(meta, indent=None, sort_keys=True))
