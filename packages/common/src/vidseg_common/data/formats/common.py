"""Helpers shared by the dataset readers and writers: image I/O, frame listing, mask sanity checks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from vidseg_common.errors import DataError
from vidseg_common.io import atomic_write_bytes

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a colour frame as ``(H, W, 3) uint8`` RGB.

    Raises:
        DataError: the file is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: frame file not found")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"{path}: cannot decode image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_rgb(path: str | os.PathLike[str], image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write ``image`` ``(H, W, 3) uint8`` RGB atomically as JPEG or PNG (chosen by the suffix)."""
    path = Path(path)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"{path}: expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    elif suffix == ".png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        raise DataError(f"{path}: unsupported image suffix {suffix!r} (use .jpg or .png)")
    if not ok:
        raise DataError(f"{path}: image encoding failed")
    atomic_write_bytes(path, buf.tobytes())


def list_frames(folder: Path, suffixes: Iterable[str] = IMAGE_SUFFIXES, what: str = "video") -> list[Path]:
    """Sorted image files of ``folder``; an error if the folder is missing or holds none."""
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder not found")
    suffixes = tuple(suffixes)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: empty {what} (no {'/'.join(suffixes)} frames)")
    return files


def check_same_size(mask: np.ndarray, frame_shape: tuple[int, ...], mask_path: Path, frame_path: Path) -> None:
    """Raise if the annotation ``mask`` ``(H, W)`` does not have the frame's ``(H, W)``."""
    if tuple(mask.shape[:2]) != tuple(frame_shape[:2]):
        raise DataError(
            f"{mask_path}: annotation size {mask.shape[1]}×{mask.shape[0]} differs from frame {frame_path} "
            f"size {frame_shape[1]}×{frame_shape[0]}"
        )


def check_contiguous_ids(ids: Iterable[int], where: str, void_id: int = 255) -> int:
    """Check that the object ids used (0 = background, ``void_id`` ignored) are exactly ``1..K``; return ``K``."""
    objects = sorted(int(i) for i in set(ids) if i not in (0, void_id))
    if objects and objects != list(range(1, objects[-1] + 1)):
        missing = sorted(set(range(1, objects[-1] + 1)) - set(objects))
        raise DataError(f"{where}: object ids {objects} are not contiguous 1..{objects[-1]} (missing {missing})")
    return objects[-1] if objects else 0


def read_list_file(path: Path, what: str = "split list") -> list[str]:
    """Non-empty stripped lines of a text file (ImageSets, split lists)."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: {what} is empty")
    return names
