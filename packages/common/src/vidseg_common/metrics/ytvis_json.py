"""Minimal, strict YouTube-VIS JSON loading for evaluation (docs/reference/vis.md §4.1–4.2), on ``pycocotools.mask``.

Ground truth: ``{videos, categories, annotations}``; results: a list of
``{video_id, category_id, score, segmentations}``. Segmentations are normalised to compressed RLE
dicts (``None`` for absent frames); uncompressed RLE (int ``counts``), compressed RLE (str ``counts``)
and polygons are accepted, like ``YTVOS.annToRLE``. Where the official API asserts, crashes or silently
drops data we raise a :class:`DataError` naming the video / annotation: unknown video or category ids,
a segmentation list whose length differs from the video length, masks whose size is not the video's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from vidseg_common.errors import DataError

Rle = dict[str, Any]


@dataclass
class VideoInstances:
    """The sequences of one video: ``segmentations[i][t]`` is an RLE or ``None``."""

    video_id: int
    height: int
    width: int
    length: int
    categories: list[int] = field(default_factory=list)
    segmentations: list[list[Rle | None]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    areas: list[list[float | None]] = field(default_factory=list)
    iscrowd: list[int] = field(default_factory=list)


def to_rle(segm: Any, height: int, width: int, where: str) -> Rle:
    """One frame's segmentation (polygon list, uncompressed or compressed RLE) as a compressed RLE."""
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
        if [int(v) for v in segm["size"]] != [height, width]:
            raise DataError(f"{where}: mask size {segm['size']} differs from the video size [{height}, {width}]")
        rle = mask_utils.frPyObjects(segm, height, width) if isinstance(segm["counts"], list) else segm
    else:
        raise DataError(f"{where}: a segmentation must be a polygon list or an RLE dict, got {type(segm).__name__}")
    return rle


def _read_json(source: str | os.PathLike[str] | Any, what: str) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as err:
            raise DataError(f"{path}: {what} file not found") from err
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err})") from err
    return source


def load_ground_truth(source: str | os.PathLike[str] | dict[str, Any]) -> tuple[dict[int, VideoInstances], list[int]]:
    """Videos (with their GT instances) and the sorted category ids of a YouTube-VIS dataset JSON.

    ``areas`` come from the file (as the official API uses them for ``avg_area``); if an annotation has
    no ``areas`` they are computed from the masks.
    """
    data = _read_json(source, "ground-truth")
    try:
        videos = {
            int(v["id"]): VideoInstances(int(v["id"]), int(v["height"]), int(v["width"]), int(v["length"]))
            for v in data["videos"]
        }
        categories = sorted(int(c["id"]) for c in data["categories"])
        annotations = data.get("annotations")
    except (KeyError, TypeError) as err:
        raise DataError(f"ground-truth JSON: missing or malformed key {err}") from err
    if annotations is None:
        raise DataError("ground-truth JSON has no 'annotations' (val/test splits are scored on the server only)")
    cats = set(categories)
    for ann in annotations:
        where = f"ground-truth annotation {ann.get('id')} (video {ann.get('video_id')})"
        video = videos.get(int(ann["video_id"]))
        if video is None:
            raise DataError(f"{where}: unknown video id")
        if int(ann["category_id"]) not in cats:
            raise DataError(f"{where}: unknown category id {ann['category_id']}")
        segs = ann["segmentations"]
        if len(segs) != video.length:
            raise DataError(f"{where}: {len(segs)} segmentations for a video of length {video.length}")
        rles = [None if s is None else to_rle(s, video.height, video.width, f"{where} frame {t}") for t, s in enumerate(segs)]
        areas = ann.get("areas") or [None if r is None else float(mask_utils.area(r)) for r in rles]
        video.categories.append(int(ann["category_id"]))
        video.segmentations.append(rles)
        video.areas.append(areas)
        video.iscrowd.append(int(ann.get("iscrowd", 0) or 0))
        video.scores.append(1.0)
    return videos, categories


def load_results(
    source: str | os.PathLike[str] | list[dict[str, Any]],
    videos: dict[int, VideoInstances],
    categories: list[int],
) -> dict[int, VideoInstances]:
    """Detections per video id, validated against the ground truth (``loadRes`` semantics: areas from masks)."""
    data = _read_json(source, "results")
    if not isinstance(data, list):
        raise DataError(f"results JSON must be a list of detections, got {type(data).__name__}")
    cats = set(categories)
    out = {vid: VideoInstances(vid, v.height, v.width, v.length) for vid, v in videos.items()}
    for i, det in enumerate(data):
        try:
            vid, cat, score, segs = int(det["video_id"]), int(det["category_id"]), float(det["score"]), det["segmentations"]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"results entry {i}: missing or malformed key {err}") from err
        where = f"results entry {i} (video {vid})"
        if vid not in out:
            raise DataError(f"{where}: video id {vid} is not in the ground truth")
        if cat not in cats:
            raise DataError(f"{where}: unknown category id {cat} (known: {sorted(cats)})")
        video = out[vid]
        if len(segs) != video.length:
            raise DataError(f"{where}: {len(segs)} segmentations for a video of length {video.length}")
        rles = [None if s is None else to_rle(s, video.height, video.width, f"{where} frame {t}") for t, s in enumerate(segs)]
        video.categories.append(cat)
        video.scores.append(score)
        video.segmentations.append(rles)
        video.areas.append([None if r is None else float(mask_utils.area(r)) for r in rles])
        video.iscrowd.append(0)
    return out
