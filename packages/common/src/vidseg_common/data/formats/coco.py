"""COCO instance JSON read as one-frame pseudo-videos (SeqFormer's joint training, docs/reference/vis.md §3.6).

SeqFormer's ``coco2seq.py`` keeps images with 1..25 non-crowd instances of classes that map onto
YouTube-VIS categories (``category_map``, e.g. :data:`COCO_TO_YTVIS19`), then turns each image into a
T-frame clip with per-frame random affine augmentation (done by the dataset, not here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidseg_common.data.formats.common import check_same_size, read_rgb
from vidseg_common.data.formats.youtube_vis import decode_segmentation, mask_to_compressed_rle, write_json
from vidseg_common.data.video import VISInstance, VISVideo
from vidseg_common.errors import DataError
from vidseg_common.io import resolve_inside

COCO_TO_YTVIS19: dict[int, int] = {
    1: 1, 2: 21, 3: 6, 4: 21, 5: 28, 7: 17, 8: 29, 9: 34, 17: 14, 18: 8, 19: 18, 21: 15, 22: 32,
    23: 20, 24: 30, 25: 22, 36: 33, 41: 5, 42: 27, 43: 40, 74: 24,
}
"""SeqFormer ``coco2seq.py`` COCO → YouTube-VIS-2019 category map."""


class CocoPseudoVideoReader:
    """COCO images with their instances as 1-frame :class:`VISVideo` records.

    Args:
        json_path: COCO instances JSON.
        image_root: folder holding the images named by ``file_name``.
        category_map: COCO category id → target id; instances of unmapped classes are dropped
            (``None`` keeps all with their own ids).
        min_instances: keep images with at least this many kept instances.
        max_instances: and at most this many (SeqFormer: 1..25).
    """

    def __init__(
        self,
        json_path: str | Path,
        image_root: str | Path,
        category_map: dict[int, int] | None = None,
        min_instances: int = 1,
        max_instances: int = 25,
    ) -> None:
        self.json_path = Path(json_path)
        self.image_root = Path(image_root)
        if not self.json_path.is_file():
            raise DataError(f"{self.json_path}: COCO JSON not found")
        try:
            data = json.loads(self.json_path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{self.json_path}: invalid JSON ({err})") from err
        for key in ("images", "annotations", "categories"):
            if key not in data:
                raise DataError(f"{self.json_path}: missing top-level key {key!r}")
        self.category_map = category_map
        self.images: dict[int, dict] = {}
        for image in data["images"]:
            missing = [k for k in ("id", "file_name", "height", "width") if k not in image]
            if missing:
                raise DataError(f"{self.json_path}: image {image.get('id', '?')} is missing keys {missing}")
            resolve_inside(self.image_root, image["file_name"], f"file_name in {self.json_path}")
            self.images[int(image["id"])] = image
        per_image: dict[int, list[dict]] = {i: [] for i in self.images}
        for ann in data["annotations"]:
            missing = [k for k in ("id", "image_id", "category_id", "segmentation") if k not in ann]
            if missing:
                raise DataError(f"{self.json_path}: annotation {ann.get('id', '?')} is missing keys {missing}")
            if int(ann["image_id"]) not in self.images:
                raise DataError(f"{self.json_path}: annotation {ann['id']} refers to unknown image_id {ann['image_id']}")
            if ann.get("iscrowd", 0) or (category_map is not None and int(ann["category_id"]) not in category_map):
                continue
            per_image[int(ann["image_id"])].append(ann)
        self.annotations = {i: a for i, a in per_image.items() if min_instances <= len(a) <= max_instances}
        self._ids = sorted(self.annotations)

    def image_ids(self) -> list[int]:
        return list(self._ids)

    def read_video(self, image_id: int) -> VISVideo:
        """The image as a 1-frame video: ``frames (1, H, W, 3)``, instances with ``masks (1, H, W)``."""
        info = self.images[image_id]
        path = resolve_inside(self.image_root, info["file_name"], f"file_name in {self.json_path}")
        frame = read_rgb(path)
        h, w = int(info["height"]), int(info["width"])
        check_same_size(np.empty((h, w)), frame.shape, self.json_path, path)
        instances = []
        for ann in self.annotations[image_id]:
            mask = decode_segmentation(ann["segmentation"], h, w, f"{self.json_path} annotation {ann['id']}")
            cat = int(ann["category_id"])
            cat = self.category_map[cat] if self.category_map is not None else cat
            instances.append(VISInstance(cat, mask[None], np.ones(1, dtype=bool), int(ann["id"])))
        return VISVideo(image_id, [info["file_name"]], frame[None], instances)


def write_coco_json(path: str | Path, images: list[dict], instances: list[dict], categories: dict[int, str]) -> None:
    """Write a COCO instances JSON; ``instances`` items: ``image_id, category_id, mask (H, W) bool``."""
    anns = []
    for i, inst in enumerate(instances, start=1):
        mask = inst["mask"]
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)] if len(xs) else [0, 0, 0, 0]
        anns.append({"id": i, "image_id": inst["image_id"], "category_id": inst["category_id"], "iscrowd": 0,
                     "segmentation": mask_to_compressed_rle(mask), "area": int(mask.sum()), "bbox": bbox})
    cats = [{"id": k, "name": v, "supercategory": "object"} for k, v in sorted(categories.items())]
    write_json(path, {"images": images, "annotations": anns, "categories": cats})
