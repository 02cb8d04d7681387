"""Cityscapes / CamVid label tables against the facts recorded in docs/reference/vss.md §4.1–4.2."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_common.data.formats import camvid, cityscapes

EVALUATED_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def test_cityscapes_label_to_train_id() -> None:
    lut = cityscapes.LABEL_TO_TRAIN_ID
    assert lut.shape == (256,) and lut.dtype == np.uint8
    assert lut[EVALUATED_LABEL_IDS].tolist() == list(range(19))
    others = np.setdiff1d(np.arange(256), EVALUATED_LABEL_IDS)
    assert (lut[others] == 255).all()


def test_cityscapes_names_colours_and_inverse() -> None:
    assert cityscapes.TRAIN_ID_NAMES == (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
        "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    )
    assert cityscapes.TRAIN_ID_COLORS.shape == (19, 3)
    assert cityscapes.TRAIN_ID_COLORS[0].tolist() == [128, 64, 128]
    train = np.arange(19, dtype=np.uint8)
    assert cityscapes.label_ids_to_train_ids(cityscapes.train_ids_to_label_ids(train)).tolist() == train.tolist()


@pytest.mark.parametrize(
    ("still", "video"),
    [
        ("0001TP_006690", ("0001TP", 30)),
        ("0001TP_008550", ("0001TP", 1890)),
        ("0006R0_f00930", ("0006R0", 931)),
        ("0016E5_00390", ("0016E5", 391)),
        ("Seq05VD_f00030", ("Seq05VD", 31)),
    ],
)
def test_camvid_still_to_video_frame(still: str, video: tuple[str, int]) -> None:
    assert camvid.video_index(still) == video
    assert camvid.label_stem(*camvid.parse_label_stem(still)) == still


def test_camvid_classes_and_void() -> None:
    assert camvid.CLASS_NAMES == ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                                  "Car", "Pedestrian", "Bicyclist")
    assert camvid.segnet_to_ids(np.array([[0, 10, 11]])).tolist() == [[0, 10, 255]]
