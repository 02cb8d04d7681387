"""Cityscapes sequences: ``leftImg8bit_sequence`` snippets with the ``gtFine`` label on the 20th frame (docs/reference/vss.md §4.1).

Layout::

    <root>/leftImg8bit_sequence/<split>/<city>/<city>_<seq:06d>_<frame:06d>_leftImg8bit.png   30 frames per snippet
    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<k>_leftImg8bit.png                          the annotated frame
    <root>/gtFine/<split>/<city>/<city>_<seq>_<k>_gtFine_labelIds.png                          (+ _labelTrainIds.png)

The annotated frame ``k`` is the 20th of its snippet, so the snippet is ``k−19 … k+10`` and previous
frames must stay inside it (GRFP#8). Samples are listed from ``gtFine/*_labelIds.png`` (TDNet lists
``leftImg8bit/``; the set is the same). Labels are mapped labelIds → trainIds with the official table.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vidseg_common.data.formats.cityscapes import label_ids_to_train_ids, train_ids_to_label_ids
from vidseg_common.data.formats.common import check_same_size, read_rgb, write_rgb
from vidseg_common.data.formats.png import read_index_png, write_index_png
from vidseg_common.errors import DataError
from vidseg_common.io import resolve_inside

SNIPPET_BEFORE = 19
"""Frames before the annotated one in a snippet (it is the 20th)."""
SNIPPET_AFTER = 10
"""Frames after it (30 in all)."""

_STEM = re.compile(r"^(?P<city>[a-z_]+)_(?P<seq>\d{6})_(?P<frame>\d{6})$")


def split_stem(stem: str) -> tuple[str, int, int]:
    """``"frankfurt_000000_001016"`` → ``("frankfurt", 0, 1016)``."""
    match = _STEM.match(stem)
    if match is None:
        raise DataError(f"Cityscapes name {stem!r} is not <city>_<seq:06d>_<frame:06d>")
    return match["city"], int(match["seq"]), int(match["frame"])


def make_stem(city: str, seq: int, frame: int) -> str:
    return f"{city}_{seq:06d}_{frame:06d}"


class CityscapesSequenceReader:
    """Read annotated samples of one Cityscapes split with their preceding sequence frames.

    Args:
        root: dataset root.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """

    def __init__(self, root: str | Path, split: str = "val") -> None:
        self.root = Path(root)
        self.split = split
        gt_dir = self.root / "gtFine" / split
        if not gt_dir.is_dir():
            raise DataError(f"{gt_dir}: Cityscapes gtFine split folder not found")
        suffix = "_gtFine_labelIds.png"
        self._samples = sorted(p.name[: -len(suffix)] for p in gt_dir.glob(f"*/*{suffix}"))
        if not self._samples:
            raise DataError(f"{gt_dir}: no *{suffix} files")

    def samples(self) -> list[str]:
        """Stems ``<city>_<seq>_<k>`` of the annotated frames."""
        return list(self._samples)

    def offset_range(self, stem: str) -> tuple[int, int]:
        """Frame offsets relative to the annotated frame that exist in its snippet: ``(-19, 10)``."""
        return -SNIPPET_BEFORE, SNIPPET_AFTER

    def frame_stem(self, stem: str, offset: int) -> str:
        city, seq, frame = split_stem(stem)
        lo, hi = self.offset_range(stem)
        if not lo <= offset <= hi:
            raise DataError(f"Cityscapes sample {stem}: offset {offset} lies outside its snippet [{lo}, {hi}]")
        return make_stem(city, seq, frame + offset)

    def frame_path(self, stem: str, offset: int = 0) -> Path:
        city = split_stem(stem)[0]
        rel = f"{city}/{self.frame_stem(stem, offset)}_leftImg8bit.png"
        return resolve_inside(self.root / "leftImg8bit_sequence" / self.split, rel, "Cityscapes frame")

    def label_path(self, stem: str) -> Path:
        city = split_stem(stem)[0]
        return resolve_inside(self.root / "gtFine" / self.split, f"{city}/{stem}_gtFine_labelIds.png", "Cityscapes label")

    def read_frame(self, stem: str, offset: int = 0) -> np.ndarray:
        """``(H, W, 3) uint8`` frame at ``offset`` from the annotated one."""
        return read_rgb(self.frame_path(stem, offset))

    def read_label_ids(self, stem: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """``(H, W) uint8`` raw labelIds of the annotated frame (checked against ``frame_shape``)."""
        path = self.label_path(stem)
        if not path.is_file():
            raise DataError(f"{path}: Cityscapes label not found")
        label_ids = read_index_png(path)
        if frame_shape is not None:
            check_same_size(label_ids, frame_shape, path, self.frame_path(stem, 0))
        return label_ids

    def read_label(self, stem: str, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """``(H, W) uint8`` trainIds (255 ignore) of the annotated frame."""
        return label_ids_to_train_ids(self.read_label_ids(stem, frame_shape))


def write_cityscapes_snippet(
    root: str | Path,
    split: str,
    city: str,
    seq: int,
    annotated_frame: int,
    frames: np.ndarray,
    label_ids: np.ndarray,
) -> None:
    """Write a 30-frame snippet ``frames (30, H, W, 3)`` whose 20th frame is ``annotated_frame``, and its labels.

    Writes the sequence frames, the ``leftImg8bit`` copy of the annotated frame, ``gtFine_labelIds`` and
    ``gtFine_labelTrainIds`` (as ``createTrainIdLabelImgs.py`` would).
    """
    root = Path(root)
    if len(frames) != SNIPPET_BEFORE + SNIPPET_AFTER + 1:
        raise DataError(f"Cityscapes snippet {city}_{seq:06d}: expected 30 frames, got {len(frames)}")
    start = annotated_frame - SNIPPET_BEFORE
    for i, frame in enumerate(frames):
        stem = make_stem(city, seq, start + i)
        write_rgb(resolve_inside(root / "leftImg8bit_sequence" / split, f"{city}/{stem}_leftImg8bit.png"), frame)
    stem = make_stem(city, seq, annotated_frame)
    write_rgb(resolve_inside(root / "leftImg8bit" / split, f"{city}/{stem}_leftImg8bit.png"), frames[SNIPPET_BEFORE])
    gt_dir = resolve_inside(root / "gtFine" / split, city)
    write_index_png(gt_dir / f"{stem}_gtFine_labelIds.png", label_ids)
    write_index_png(gt_dir / f"{stem}_gtFine_labelTrainIds.png", label_ids_to_train_ids(label_ids))


def write_cityscapes_prediction(out_dir: str | Path, stem: str, train_ids: np.ndarray, as_label_ids: bool = True) -> None:
    """Write a prediction PNG ``<out>/<city>/<stem>_pred.png`` in labelIds (official evaluator) or trainIds."""
    city = split_stem(stem)[0]
    ids = train_ids_to_label_ids(train_ids) if as_label_ids else np.asarray(train_ids, dtype=np.uint8)
    write_index_png(resolve_inside(out_dir, f"{city}/{stem}_pred.png"), ids)
