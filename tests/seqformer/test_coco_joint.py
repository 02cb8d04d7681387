"""COCO pseudo-video joint training path (``coco_joint_r50.yaml``; docs/reference/vis.md §3.6).

A COCO image becomes a T-frame clip: the original plus T−1 copies under a random affine with rotation within the
paper's ±10°, shuffled; COCO categories are mapped to YouTube-VIS-2019 ids and unmapped ones are dropped.
The rotation is measured from the augmented masks (second moments of a long bar), not read from the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import yaml

from vidseg_common.data.datamodules.vis import VISDataModule
from vidseg_common.data.formats.coco import write_coco_json

REPO = Path(__file__).resolve().parents[2]


def _bar_angle(mask: np.ndarray) -> float:
    """Orientation in degrees of the principal axis of a binary mask (0 = horizontal)."""
    ys, xs = np.nonzero(mask)
    x, y = xs - xs.mean(), ys - ys.mean()
    return math.degrees(0.5 * math.atan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean()))


def _coco_image(root: Path) -> np.ndarray:
    """A 64×128 image with a horizontal bar (person), a square (car) and a disc of an unmapped class (bus)."""
    h, w = 64, 128
    image = np.full((h, w, 3), 120, np.uint8)
    bar = np.zeros((h, w), bool)
    bar[30:36, 34:94] = True
    square = np.zeros((h, w), bool)
    square[6:18, 6:18] = True
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (112, 50), 7, 1, -1)
    image[bar], image[square], image[disc.astype(bool)] = (200, 40, 40), (40, 200, 40), (40, 40, 200)
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "a.jpg"), image[..., ::-1])
    instances = [{"image_id": 1, "category_id": 1, "mask": bar}, {"image_id": 1, "category_id": 3, "mask": square},
                 {"image_id": 1, "category_id": 6, "mask": disc.astype(bool)}]
    write_coco_json(root / "coco.json", [{"id": 1, "file_name": "a.jpg", "height": h, "width": w}], instances,
                    {1: "person", 3: "car", 6: "bus"})
    return bar


def test_coco_image_becomes_rotated_pseudo_video(tmp_path: Path) -> None:
    bar = _coco_image(tmp_path / "coco")
    args = yaml.safe_load((REPO / "experiments/seqformer/synthetic.yaml").read_text())["data"]["init_args"]
    overlay = yaml.safe_load((REPO / "experiments/seqformer/coco_joint_r50.yaml").read_text())["data"]["init_args"]
    assert overlay["pseudo_rotation"] == 10.0  # the paper's ±10° (the released code: ±20°)
    args.update(overlay, coco_json=str(tmp_path / "coco/coco.json"), coco_images=str(tmp_path / "coco/images"),
                cache_dir=str(tmp_path / "cache"), num_workers=0,
                synthetic={**args["synthetic"], "num_videos": 1, "num_val_videos": 1, "num_frames": 10})
    data = VISDataModule(**args)
    data.setup("fit")
    youtube, coco = data.datasets["train"].datasets
    assert len(coco) == 1 and len(youtube) == 1

    angles, originals = [], 0
    for _ in range(6):
        item = coco[0]
        frames, target = item["frames"], item["target"]
        assert frames.shape == (args["num_frames"], 3, 64, 128)
        assert sorted(target["labels"].tolist()) == [1, 6]  # person → 1, car → 6 (COCO_TO_YTVIS19); bus dropped
        person = target["masks"][target["labels"] == 1][0].numpy()  # (T, H, W)
        assert person.any(axis=(1, 2)).all() and target["valid"].all()
        angles += [_bar_angle(m) for m in person]
        originals += any(np.array_equal(m, bar) or np.array_equal(m, bar[:, ::-1]) for m in person)  # hflip of the clip
    assert originals == 6  # every clip holds the original image
    assert max(abs(a) for a in angles) <= 10.5  # rotation within ±10° (+ rasterisation)
    assert sum(abs(a) > 1.0 for a in angles) >= 3  # and the copies are rotated
