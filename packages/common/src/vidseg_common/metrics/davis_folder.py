"""Read a DAVIS-2017 ground-truth root and a results folder the way davis2017-evaluation does, strictly.

Layout: ``<gt_root>/ImageSets/<year>/<subset>.txt`` (one sequence per line),
``<gt_root>/Annotations/<resolution>/<seq>/<frame>.png`` (palette PNG, ids, 255 = void) and
``<results>/<seq>/<frame>.png`` with the same frame names. Unlike the official tool (which calls
``sys.exit`` or silently ignores files) every inconsistency raises a :class:`DataError` that names the
file: RGB prediction PNGs, missing or extra prediction frames, frame-size mismatches. In the
semi-supervised protocol the first and last frame are not scored, so their predictions may be absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidseg_common.data.formats.png import read_index_png
from vidseg_common.errors import DataError

_NON_INDEX_MODES = ("RGB", "RGBA", "LA", "CMYK", "YCbCr", "HSV", "I", "F", "I;16")


def read_prediction_png(path: str | os.PathLike[str]) -> np.ndarray:
    """A predicted id map ``(H, W) uint8``: like :func:`read_index_png` but without its full-image value scan.

    Out-of-range ids (e.g. 255 of a 0/255 mask) are caught by the scorer's object-count check, which
    names the video; RGB images and undecodable files are rejected here with the file name.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.mode in _NON_INDEX_MODES:
                raise DataError(
                    f"{path}: mask is a {img.mode} image; expected an indexed (palette, mode P) or greyscale"
                    " (mode L) PNG whose pixel values are object ids"
                )
            if img.mode == "1":
                return read_index_png(path)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError as err:
        raise DataError(f"{path}: mask file not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: cannot decode PNG ({err})") from err


def davis_sequences(gt_root: str | os.PathLike[str], subset: str = "val", year: str = "2017") -> list[str]:
    """Sequence names listed in ``ImageSets/<year>/<subset>.txt``."""
    path = Path(gt_root) / "ImageSets" / year / f"{subset}.txt"
    if not path.is_file():
        raise DataError(f"{path}: sequence list not found (is {gt_root} a DAVIS-{year} root?)")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: the sequence list is empty")
    return names


def gt_frames(gt_root: str | os.PathLike[str], seq: str, resolution: str = "480p") -> list[Path]:
    """Sorted annotation PNGs of one sequence."""
    folder = Path(gt_root) / "Annotations" / resolution / seq
    frames = sorted(folder.glob("*.png"))
    if not frames:
        raise DataError(f"{folder}: no annotation PNGs for sequence {seq!r}")
    return frames


def load_gt(gt_root: str | os.PathLike[str], seq: str, resolution: str = "480p") -> tuple[np.ndarray, list[str]]:
    """``(T, H, W) uint8`` GT ids of one sequence and its frame names (without extension)."""
    frames = gt_frames(gt_root, seq, resolution)
    arrays = [read_index_png(p) for p in frames]
    shape = arrays[0].shape
    for path, arr in zip(frames, arrays):
        if arr.shape != shape:
            raise DataError(f"{path}: size {arr.shape} differs from the sequence's first frame {shape}")
    return np.stack(arrays), [p.stem for p in frames]


def load_prediction(
    results_root: str | os.PathLike[str],
    seq: str,
    frame_names: list[str],
    frame_shape: tuple[int, int],
    optional: frozenset[int] = frozenset(),
) -> np.ndarray:
    """``(T, H, W) uint8`` predicted ids for ``frame_names``.

    Args:
        optional: indices of frames that are not scored; a missing file there becomes all zeros.

    Raises:
        DataError: missing sequence folder, missing or extra frames, RGB PNGs, size mismatch.
    """
    folder = Path(results_root) / seq
    if not folder.is_dir():
        raise DataError(f"{folder}: no results folder for sequence {seq!r}")
    present = {p.stem for p in folder.glob("*.png")}
    extra = sorted(present - set(frame_names))
    if extra:
        raise DataError(f"{folder}: {len(extra)} prediction frame(s) with no ground-truth frame, e.g. {extra[0]}.png")
    out = np.zeros((len(frame_names), *frame_shape), dtype=np.uint8)
    for i, name in enumerate(frame_names):
        path = folder / f"{name}.png"
        if name not in present:
            if i in optional:
                continue
            raise DataError(f"{path}: prediction frame missing")
        arr = read_prediction_png(path)
        if arr.shape != tuple(frame_shape):
            raise DataError(f"{path}: prediction size {arr.shape} differs from the ground truth {tuple(frame_shape)}")
        out[i] = arr
    return out
