"""Indexed ("palette") PNG masks, the format of DAVIS / YouTube-VOS annotations and predictions.

A mask PNG stores one object id (or class id) per pixel as the palette index: mode ``P`` (or ``L``
for greyscale label maps). RGB masks are rejected because decoding colours back to ids is ambiguous;
DAVIS-2016-style 0/255 binary masks are rejected unless the caller asks for them to be converted
(``binary_255="convert"`` maps 255 → 1), because treating 255 as an object id (or as "void")
silently gives wrong numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidseg_common.errors import DataError
from vidseg_common.io import atomic_path

VOID_ID = 255
"""Label value for "ignore" pixels (DAVIS void, Cityscapes/CamVid ignore)."""


def davis_palette(num_colors: int = 256) -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map, ``(num_colors, 3) uint8``: id ``i`` gets bit-interleaved RGB."""
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for idx in range(num_colors):
        value, r, g, b = idx, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[idx] = (r, g, b)
    return palette


def read_index_png(
    path: str | os.PathLike[str],
    binary_255: Literal["reject", "convert"] = "reject",
) -> np.ndarray:
    """Read an indexed mask PNG as ``(H, W) uint8`` ids.

    Args:
        path: a mode ``P``, ``L`` or ``1`` PNG.
        binary_255: what to do with masks whose only values are {0, 255}: ``"reject"`` raises a
            :class:`DataError`; ``"convert"`` returns them as {0, 1} (DAVIS-2016 style single object).

    Raises:
        DataError: missing/corrupt file, RGB(A) image, or a 0/255 binary mask with ``binary_255="reject"``.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr", "HSV", "I", "F", "I;16"):
                raise DataError(
                    f"{path}: mask is a {mode} image; expected an indexed (palette, mode P) or greyscale (mode L) PNG"
                    " whose pixel values are object/class ids"
                )
            array = np.array(img.convert("L") if mode == "1" else img, dtype=np.uint8)
    except FileNotFoundError as err:
        raise DataError(f"{path}: mask file not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: cannot decode PNG ({err})") from err
    if mode == "1":
        array = (array > 0).astype(np.uint8) * VOID_ID
    present = np.flatnonzero(np.bincount(array.ravel(), minlength=256))  # cheaper than np.unique on uint8 maps
    if len(present) == 2 and present[0] == 0 and present[1] == VOID_ID:
        if binary_255 == "convert":
            return (array == VOID_ID).astype(np.uint8)
        raise DataError(
            f"{path}: mask holds only 0 and 255 (a DAVIS-2016-style binary mask); 255 means 'void' in DAVIS-2017."
            " Convert it to ids 0/1 or pass binary_255='convert'"
        )
    return array


def write_index_png(
    path: str | os.PathLike[str],
    ids: np.ndarray,
    palette: np.ndarray | None = None,
) -> None:
    """Write ``ids`` ``(H, W)`` (integers in [0, 255]) as a palette PNG, atomically.

    Args:
        palette: ``(N, 3) uint8``; defaults to :func:`davis_palette`.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise DataError(f"{path}: expected a (H, W) id map, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise DataError(f"{path}: ids must lie in [0, 255], got [{ids.min()}, {ids.max()}]")
    ids_u8 = np.ascontiguousarray(ids, dtype=np.uint8)
    img = Image.frombytes("P", (ids_u8.shape[1], ids_u8.shape[0]), ids_u8.tobytes())
    pal = davis_palette() if palette is None else np.asarray(palette, dtype=np.uint8)
    img.putpalette(pal.reshape(-1).tolist())
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
