"""The first-frame mask a user gives for semi-supervised VOS on their own video, in the formats people have.

* a palette PNG (mode ``P``, DAVIS) or a greyscale PNG (mode ``L``) of object ids — 255 is void, as in DAVIS;
* a 0/255 binary PNG (mode ``L`` / ``1``): one object;
* an RGB(A) PNG: black is background, every other colour one object, numbered by first appearance in raster
  order (the mapping is logged); alpha is ignored;
* a ``.npy`` array ``(H, W)`` of integer ids.

Ids that are not ``1..K`` (say ``{0, 3, 7}``) are renumbered in increasing order (logged), because the VOS
models number their objects ``1..K``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from vidseg_common.data.formats.png import VOID_ID, read_index_png
from vidseg_common.errors import DataError

log = logging.getLogger(__name__)

MAX_OBJECTS = 254
"""Ids 1..254 (0 is background and 255 void)."""


def _colour_ids(path: Path, rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` colours → ids: black 0, other colours 1..K by first appearance in raster order."""
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    colours, first, inverse = np.unique(packed.ravel(), return_index=True, return_inverse=True)
    objects = [c for c in colours[np.argsort(first)].tolist() if c != 0]
    if len(objects) > MAX_OBJECTS:
        raise DataError(
            f"{path}: {len(objects)} distinct colours; an RGB mask maps each colour to one object, at most {MAX_OBJECTS}."
            " A JPEG-compressed or anti-aliased mask has in-between colours: save it as a lossless palette or"
            " greyscale PNG of ids")
    lut = np.zeros(len(colours), dtype=np.uint8)
    position = {c: i for i, c in enumerate(colours.tolist())}
    for new_id, colour in enumerate(objects, start=1):
        lut[position[colour]] = new_id
    mapping = ", ".join(f"#{c:06x} → {i}" for i, c in enumerate(objects, start=1))
    log.info("%s: RGB mask colours mapped to object ids (black = background): %s", path, mapping)
    return lut[inverse].reshape(rgb.shape[:2])


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read the .npy mask ({err})") from err
        if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
            raise DataError(f"{path}: expected an (H, W) integer id array, got {array.dtype} {array.shape}")
        if array.size and (array.min() < 0 or array.max() > VOID_ID):
            raise DataError(f"{path}: ids must lie in [0, 255] (255 = void), got [{array.min()}, {array.max()}]")
        return array.astype(np.uint8)
    if not path.is_file():
        raise DataError(f"{path}: first-frame mask not found")
    try:
        with Image.open(path) as img:
            mode = img.mode
            rgb = np.asarray(img.convert("RGB")) if mode in ("RGB", "RGBA", "CMYK", "YCbCr") else None
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot decode the mask image ({err})") from err
    if rgb is not None:
        return _colour_ids(path, rgb)
    return read_index_png(path, binary_255="convert")


def read_first_mask(
    path: str | os.PathLike[str], source_size: tuple[int, int], frame_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, int]:
    """Read a first-frame mask and bring it to the decoded frames' size.

    Args:
        path: the mask (formats in the module docstring).
        source_size: ``(H, W)`` of the video as stored; the mask must have this size (or ``frame_size``).
        frame_size: ``(H, W)`` of the frames the model reads (after ``max_side``); default ``source_size``.

    Returns:
        ``ids (H, W) uint8`` at ``frame_size`` (0 background, 1..K, 255 void) and ``K``.

    Raises:
        DataError: unreadable file, a size that is neither the video's nor the frames', no object, ids or colours
            that cannot be mapped to at most 254 objects.
    """
    path = Path(path)
    frame_size = tuple(frame_size or source_size)
    ids = _read(path)
    if ids.shape not in (tuple(source_size), frame_size):
        raise DataError(f"{path}: mask is {ids.shape[0]}×{ids.shape[1]} (H×W) but the video frames are "
                        f"{source_size[0]}×{source_size[1]}")
    objects = sorted(int(i) for i in np.unique(ids) if i not in (0, VOID_ID))
    if not objects:
        raise DataError(f"{path}: the mask holds no object (every pixel is background 0 or void 255)")
    if objects != list(range(1, len(objects) + 1)):
        lut = np.arange(256, dtype=np.uint8)
        lut[objects] = np.arange(1, len(objects) + 1)
        ids = lut[ids]
        log.info("%s: object ids %s renumbered to 1..%d", path, objects, len(objects))
    if ids.shape != frame_size:
        ids = cv2.resize(ids, (frame_size[1], frame_size[0]), interpolation=cv2.INTER_NEAREST)
        if not np.isin(np.arange(1, len(objects) + 1), ids).all():
            raise DataError(f"{path}: an object vanishes when the mask is shrunk to {frame_size} (max_side); "
                            "use a larger max_side")
    return ids, len(objects)
