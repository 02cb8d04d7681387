"""YouTube-VIS 2019/2021 dataset JSON and results JSON (docs/reference/vis.md §4.1, §4.2).

Layout::

    <root>/<split>/JPEGImages/<video>/<frame>.jpg
    <annotation json>   {"videos", "categories", "annotations"?, "info"?, "licenses"?}

Each annotation has one entry per frame in ``segmentations`` (uncompressed RLE with int-list counts
in the official files, compressed RLE with str counts, or polygons), ``null`` where the instance is
absent. The writer emits uncompressed RLE like the official files; the results writer emits
compressed RLE (what ``loadRes`` expects). Masks are decoded with pycocotools.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from vidseg_common.data.formats.common import check_same_size, read_rgb
from vidseg_common.data.video import VISInstance, VISVideo
from vidseg_common.errors import DataError
from vidseg_common.io import atomic_write_text, resolve_inside

_VIDEO_KEYS = ("id", "width", "height", "length", "file_names")
_ANNOTATION_KEYS = ("id", "video_id", "category_id", "segmentations")


def decode_segmentation(segm: Any, height: int, width: int, where: str) -> np.ndarray | None:
    """Decode one per-frame segmentation (RLE, compressed RLE, polygons or ``None``) to ``(H, W) bool``."""
    if segm is None:
        return None
    try:
        if isinstance(segm, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
        elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
            rle = mask_utils.frPyObjects(segm, height, width)
        elif isinstance(segm, dict) and isinstance(segm.get("counts"), (str, bytes)):
            rle = dict(segm)
            if isinstance(rle["counts"], str):
                rle["counts"] = rle["counts"].encode("ascii")
        else:
            raise TypeError(f"unsupported segmentation of type {type(segm).__name__}")
        if isinstance(segm, dict) and list(segm.get("size", [height, width])) != [height, width]:
            raise ValueError(f"RLE size {segm['size']} differs from the video size [{height}, {width}]")
        with warnings.catch_warnings():  # pycocotools' Cython decoder predates numpy 2's __array__(copy=) protocol
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except (TypeError, ValueError, KeyError) as err:
        raise DataError(f"{where}: bad segmentation ({err})") from err


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W) bool`` → ``{"size": [H, W], "counts": [int, ...]}`` (column-major runs, starting with zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def mask_to_compressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W) bool`` → ``{"size": [H, W], "counts": str}`` (pycocotools compressed RLE)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


class YouTubeVISReader:
    """Read a YouTube-VIS dataset JSON and its frames.

    Args:
        json_path: the dataset JSON (``train.json``, ``valid.json``, ``instances.json`` …).
        image_root: folder the ``file_names`` are relative to (``<root>/<split>/JPEGImages``).
    """

    def __init__(self, json_path: str | Path, image_root: str | Path) -> None:
        self.json_path = Path(json_path)
        self.image_root = Path(image_root)
        if not self.json_path.is_file():
            raise DataError(f"{self.json_path}: YouTube-VIS JSON not found")
        try:
            data = json.loads(self.json_path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{self.json_path}: invalid JSON ({err})") from err
        for key in ("videos", "categories"):
            if key not in data:
                raise DataError(f"{self.json_path}: missing top-level key {key!r}")
        self.categories: dict[int, str] = {}
        for cat in data["categories"]:
            if "id" not in cat or "name" not in cat:
                raise DataError(f"{self.json_path}: category {cat} lacks 'id' or 'name'")
            self.categories[int(cat["id"])] = cat["name"]
        self.videos: dict[int, dict] = {}
        for video in data["videos"]:
            missing = [k for k in _VIDEO_KEYS if k not in video]
            if missing:
                raise DataError(f"{self.json_path}: video {video.get('id', '?')} is missing keys {missing}")
            if len(video["file_names"]) != video["length"]:
                raise DataError(
                    f"{self.json_path}: video {video['id']} has length {video['length']} "
                    f"but {len(video['file_names'])} file_names"
                )
            if not video["file_names"]:
                raise DataError(f"{self.json_path}: video {video['id']} is empty (no file_names)")
            for name in video["file_names"]:
                resolve_inside(self.image_root, name, f"file name in {self.json_path}")
            self.videos[int(video["id"])] = video
        self.has_annotations = "annotations" in data
        self.annotations: dict[int, list[dict]] = {vid: [] for vid in self.videos}
        for ann in data.get("annotations", []):
            missing = [k for k in _ANNOTATION_KEYS if k not in ann]
            if missing:
                raise DataError(f"{self.json_path}: annotation {ann.get('id', '?')} is missing keys {missing}")
            vid = int(ann["video_id"])
            if vid not in self.videos:
                raise DataError(f"{self.json_path}: annotation {ann['id']} refers to unknown video_id {vid}")
            if int(ann["category_id"]) not in self.categories:
                raise DataError(f"{self.json_path}: annotation {ann['id']} has unknown category_id {ann['category_id']}")
            if len(ann["segmentations"]) != self.videos[vid]["length"]:
                raise DataError(
                    f"{self.json_path}: annotation {ann['id']} has {len(ann['segmentations'])} segmentations "
                    f"but video {vid} has length {self.videos[vid]['length']}"
                )
            self.annotations[vid].append(ann)

    def video_ids(self) -> list[int]:
        return sorted(self.videos)

    def frame_path(self, file_name: str) -> Path:
        return resolve_inside(self.image_root, file_name, f"file name in {self.json_path}")

    def read_frames(self, video_id: int, indices: list[int] | None = None) -> np.ndarray:
        """``(T, H, W, 3) uint8`` frames (all, or those at ``indices``), checked against width/height."""
        video = self.videos[video_id]
        names = video["file_names"] if indices is None else [video["file_names"][i] for i in indices]
        frames = []
        for name in names:
            frame = read_rgb(self.frame_path(name))
            check_same_size(np.empty((video["height"], video["width"])), frame.shape, self.json_path, self.frame_path(name))
            frames.append(frame)
        return np.stack(frames)

    def read_instances(self, video_id: int, indices: list[int] | None = None) -> list[VISInstance]:
        """Instance tracks of ``video_id`` restricted to the frames at ``indices`` (default all)."""
        video = self.videos[video_id]
        h, w = int(video["height"]), int(video["width"])
        indices = list(range(video["length"])) if indices is None else indices
        out = []
        for ann in self.annotations[video_id]:
            masks = np.zeros((len(indices), h, w), dtype=bool)
            valid = np.zeros(len(indices), dtype=bool)
            for j, t in enumerate(indices):
                decoded = decode_segmentation(ann["segmentations"][t], h, w, f"{self.json_path} annotation {ann['id']} frame {t}")
                if decoded is not None:
                    masks[j], valid[j] = decoded, True
            out.append(VISInstance(int(ann["category_id"]), masks, valid, int(ann["id"])))
        return out

    def read_video(self, video_id: int) -> VISVideo:
        return VISVideo(video_id, list(self.videos[video_id]["file_names"]), self.read_frames(video_id), self.read_instances(video_id))


def build_youtube_vis_json(videos: list[dict], categories: dict[int, str], annotations: list[dict] | None) -> dict:
    """Assemble a dataset JSON; ``annotations`` items hold ``video_id, category_id, masks (T, H, W) bool, valid (T,)``."""
    data: dict[str, Any] = {
        "info": {"description": "vidseg synthetic YouTube-VIS"},
        "licenses": [],
        "videos": videos,
        "categories": [{"id": k, "name": v, "supercategory": "object"} for k, v in sorted(categories.items())],
    }
    if annotations is not None:
        data["annotations"] = []
        for i, ann in enumerate(annotations, start=1):
            segs, boxes, areas = [], [], []
            for mask, ok in zip(ann["masks"], ann["valid"]):
                if not ok:
                    segs.append(None), boxes.append(None), areas.append(None)
                    continue
                segs.append(mask_to_uncompressed_rle(mask))
                ys, xs = np.nonzero(mask)
                boxes.append([int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)] if len(xs) else None)
                areas.append(int(mask.sum()))
            data["annotations"].append({
                "id": i, "video_id": ann["video_id"], "category_id": ann["category_id"], "iscrowd": 0,
                "segmentations": segs, "bboxes": boxes, "areas": areas,
                "height": ann["masks"].shape[1], "width": ann["masks"].shape[2], "length": len(segs),
            })
    return data


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as compact JSON atomically."""
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def write_youtube_vis_results(path: str | Path, predictions: list[dict]) -> None:
    """Write a results JSON: items ``video_id, category_id, score, masks (T, H, W) bool`` (None entries → null)."""
    results = []
    for pred in predictions:
        segs = [None if m is None else mask_to_compressed_rle(m) for m in pred["masks"]]
        results.append({"video_id": int(pred["video_id"]), "category_id": int(pred["category_id"]),
                        "score": float(pred["score"]), "segmentations": segs})
    write_json(path, results)
