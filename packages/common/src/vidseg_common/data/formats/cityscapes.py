"""Cityscapes label table (cityscapesScripts ``helpers/labels.py``) and labelId ↔ trainId lookup tables.

Each row is ``(name, labelId, trainId, category, color)``. The 19 evaluated classes have trainIds
0..18; every other labelId maps to :data:`IGNORE_ID` (255), as ``createTrainIdLabelImgs.py`` writes
them (TDNet uses 250 instead; we follow the official tool). ``license plate`` (labelId -1) is not
stored in label images and is left out of the lookup table.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

IGNORE_ID = 255
"""trainId of every pixel that is not one of the 19 evaluated classes."""


class CityscapesLabel(NamedTuple):
    """One row of the official table."""

    name: str
    label_id: int
    train_id: int
    category: str
    color: tuple[int, int, int]


LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel("unlabeled", 0, 255, "void", (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, "void", (0, 0, 0)),
    CityscapesLabel("rectification border", 2, 255, "void", (0, 0, 0)),
    CityscapesLabel("out of roi", 3, 255, "void", (0, 0, 0)),
    CityscapesLabel("static", 4, 255, "void", (0, 0, 0)),
    CityscapesLabel("dynamic", 5, 255, "void", (111, 74, 0)),
    CityscapesLabel("ground", 6, 255, "void", (81, 0, 81)),
    CityscapesLabel("road", 7, 0, "flat", (128, 64, 128)),
    CityscapesLabel("sidewalk", 8, 1, "flat", (244, 35, 232)),
    CityscapesLabel("parking", 9, 255, "flat", (250, 170, 160)),
    CityscapesLabel("rail track", 10, 255, "flat", (230, 150, 140)),
    CityscapesLabel("building", 11, 2, "construction", (70, 70, 70)),
    CityscapesLabel("wall", 12, 3, "construction", (102, 102, 156)),
    CityscapesLabel("fence", 13, 4, "construction", (190, 153, 153)),
    CityscapesLabel("guard rail", 14, 255, "construction", (180, 165, 180)),
    CityscapesLabel("bridge", 15, 255, "construction", (150, 100, 100)),
    CityscapesLabel("tunnel", 16, 255, "construction", (150, 120, 90)),
    CityscapesLabel("pole", 17, 5, "object", (153, 153, 153)),
    CityscapesLabel("polegroup", 18, 255, "object", (153, 153, 153)),
    CityscapesLabel("traffic light", 19, 6, "object", (250, 170, 30)),
    CityscapesLabel("traffic sign", 20, 7, "object", (220, 220, 0)),
    CityscapesLabel("vegetation", 21, 8, "nature", (107, 142, 35)),
    CityscapesLabel("terrain", 22, 9, "nature", (152, 251, 152)),
    CityscapesLabel("sky", 23, 10, "sky", (70, 130, 180)),
    CityscapesLabel("person", 24, 11, "human", (220, 20, 60)),
    CityscapesLabel("rider", 25, 12, "human", (255, 0, 0)),
    CityscapesLabel("car", 26, 13, "vehicle", (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, "vehicle", (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, "vehicle", (0, 60, 100)),
    CityscapesLabel("caravan", 29, 255, "vehicle", (0, 0, 90)),
    CityscapesLabel("trailer", 30, 255, "vehicle", (0, 0, 110)),
    CityscapesLabel("train", 31, 16, "vehicle", (0, 80, 100)),
    CityscapesLabel("motorcycle", 32, 17, "vehicle", (0, 0, 230)),
    CityscapesLabel("bicycle", 33, 18, "vehicle", (119, 11, 32)),
)

NUM_CLASSES = 19
"""Number of evaluated classes (trainIds 0..18)."""

TRAIN_ID_NAMES: tuple[str, ...] = tuple(
    label.name for label in sorted((lb for lb in LABELS if lb.train_id != IGNORE_ID), key=lambda lb: lb.train_id)
)
"""Class name of each trainId 0..18."""

TRAIN_ID_COLORS: np.ndarray = np.array(
    [label.color for label in sorted((lb for lb in LABELS if lb.train_id != IGNORE_ID), key=lambda lb: lb.train_id)],
    dtype=np.uint8,
)
"""``(19, 3) uint8`` colour of each trainId (the official ``color`` column)."""


def _label_to_train() -> np.ndarray:
    lut = np.full(256, IGNORE_ID, dtype=np.uint8)
    for label in LABELS:
        lut[label.label_id] = label.train_id
    return lut


def _train_to_label() -> np.ndarray:
    lut = np.zeros(256, dtype=np.uint8)  # ignore (255) -> 0 "unlabeled"
    for label in LABELS:
        if label.train_id != IGNORE_ID:
            lut[label.train_id] = label.label_id
    return lut


LABEL_TO_TRAIN_ID: np.ndarray = _label_to_train()
"""``(256,) uint8`` lookup: ``train_ids = LABEL_TO_TRAIN_ID[label_ids]`` (unknown ids → 255)."""

TRAIN_TO_LABEL_ID: np.ndarray = _train_to_label()
"""``(256,) uint8`` lookup back to labelIds for the official evaluator (255 → 0 ``unlabeled``)."""

NAME_TO_LABEL_ID: dict[str, int] = {label.name: label.label_id for label in LABELS}
"""labelId of each class name (used by the synthetic scene generator)."""


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a ``(H, W)`` labelId map to trainIds ``(H, W) uint8`` (255 = ignore)."""
    return LABEL_TO_TRAIN_ID[np.asarray(label_ids, dtype=np.uint8)]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a ``(H, W)`` trainId map back to labelIds ``(H, W) uint8`` (ignore → 0)."""
    return TRAIN_TO_LABEL_ID[np.asarray(train_ids, dtype=np.uint8)]
