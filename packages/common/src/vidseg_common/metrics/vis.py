"""YouTube-VIS video AP/AR (youtubevos/cocoapi ``YTVOSeval``, segm) as a torchmetrics metric.

Spec (docs/reference/vis.md §4.3–4.4): spatio-temporal mask IoU ``Σ_t |d_t ∩ g_t| / Σ_t |d_t ∪ g_t|`` (a frame where
only one side is present adds its area to the union), COCO greedy matching per (video, category) at 10
IoU thresholds, precision at 101 recall points, ``maxDets`` 1/10/100, area ranges split at 128² and 256²
on the instance's mean non-zero area, and the 12 stats in the official order.

``update()`` reduces a video to small tables, so nothing mask-sized is kept:

* ``dets``: (video, category, rank, score, avg_area): detections per category sorted by score
  (stable), cut to ``max(max_dets)``;
* ``gts``: (video, category, index, avg_area, crowd);
* ``ious``: (video, category, rank, index, iou).

Videos are identified by their integer YouTube-VIS id; ``compute()`` processes them in ascending id
order, which is the official concatenation order (it decides ties between equal scores).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor

from vidseg_common.metrics._tagged import TaggedRowsMetric
from vidseg_common.metrics.vis_matching import evaluate_tables
from vidseg_common.metrics.ytvis_json import VideoInstances

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def average_area(areas: list[float | None]) -> float:
    """Mean of the non-null, non-zero per-frame areas (0 if there are none), as ``loadRes``/``_prepare``."""
    kept = [a for a in areas if a]
    return float(np.array(kept).mean()) if kept else 0.0


def sequence_ious(dts: list[list[Any]], gts: list[list[Any]]) -> np.ndarray:
    """Spatio-temporal IoU matrix ``(D, G)`` of ``iou_seq`` for RLE sequences (``None`` = absent frame).

    Per frame the intersections come from ``pycocotools.mask.iou`` (``i = o (a + b) / (1 + o)``, rounded
    to the integer it is), so all pairs of a frame are one C call.
    """
    num_d, num_g = len(dts), len(gts)
    if num_d == 0 or num_g == 0:
        return np.zeros((num_d, num_g))
    inter = np.zeros((num_d, num_g))
    area_d = np.zeros(num_d)
    area_g = np.zeros(num_g)
    for t in range(len(gts[0])):
        d_idx = [i for i in range(num_d) if dts[i][t] is not None]
        g_idx = [j for j in range(num_g) if gts[j][t] is not None]
        a_d = mask_utils.area([dts[i][t] for i in d_idx]).astype(np.float64) if d_idx else np.zeros(0)
        a_g = mask_utils.area([gts[j][t] for j in g_idx]).astype(np.float64) if g_idx else np.zeros(0)
        area_d[d_idx] += a_d
        area_g[g_idx] += a_g
        if d_idx and g_idx:
            with warnings.catch_warnings():  # pycocotools' own numpy-2 copy= deprecation inside mask.iou
                warnings.simplefilter("ignore", DeprecationWarning)
                o = mask_utils.iou([dts[i][t] for i in d_idx], [gts[j][t] for j in g_idx], [0] * len(g_idx))
            o = np.asarray(o, np.float64).reshape(len(d_idx), len(g_idx))
            inter[np.ix_(d_idx, g_idx)] += np.rint(o * (a_d[:, None] + a_g[None, :]) / (1.0 + o))
    union = area_d[:, None] + area_g[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def reduce_video(gt: VideoInstances, dt: VideoInstances, max_det: int = 100) -> dict[str, dict[str, np.ndarray]]:
    """The ``dets`` / ``gts`` / ``ious`` tables of one video (see the module docstring)."""
    tables: dict[str, dict[str, list[float]]] = {
        "dets": {k: [] for k in ("video", "category", "rank", "score", "avg_area")},
        "gts": {k: [] for k in ("video", "category", "index", "avg_area", "crowd")},
        "ious": {k: [] for k in ("video", "category", "rank", "index", "iou")},
    }
    vid = float(gt.video_id)
    for cat in sorted(set(gt.categories) | set(dt.categories)):
        g_ids = [j for j, c in enumerate(gt.categories) if c == cat]
        d_all = [i for i, c in enumerate(dt.categories) if c == cat]
        order = np.argsort([-dt.scores[i] for i in d_all], kind="mergesort")[:max_det]
        d_ids = [d_all[i] for i in order]
        for rank, i in enumerate(d_ids):
            for key, value in zip(tables["dets"], (vid, cat, rank, dt.scores[i], average_area(dt.areas[i]))):
                tables["dets"][key].append(value)
        for index, j in enumerate(g_ids):
            for key, value in zip(tables["gts"], (vid, cat, index, average_area(gt.areas[j]), gt.iscrowd[j])):
                tables["gts"][key].append(value)
        ious = sequence_ious([dt.segmentations[i] for i in d_ids], [gt.segmentations[j] for j in g_ids])
        for rank in range(len(d_ids)):
            for index in range(len(g_ids)):
                for key, value in zip(tables["ious"], (vid, cat, rank, index, ious[rank, index])):
                    tables["ious"][key].append(value)
    return {name: {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()} for name, cols in tables.items()}


def _tensor_instances(video_id: int, data: dict[str, Tensor], is_gt: bool) -> VideoInstances:
    masks = data["masks"].detach().to("cpu", torch.bool)
    if masks.ndim != 4:
        raise ValueError(f"video {video_id}: masks must be (N, T, H, W), got {tuple(masks.shape)}")
    num, length, height, width = masks.shape
    labels = data["labels"].detach().cpu().tolist()
    valid = data.get("valid")
    valid = torch.ones(num, length, dtype=torch.bool) if valid is None else valid.detach().cpu().bool()
    out = VideoInstances(video_id, height, width, length)
    for n in range(num):
        stack = np.asfortranarray(masks[n].permute(1, 2, 0).numpy().astype(np.uint8))  # (H, W, T)
        rles = mask_utils.encode(stack)
        seq = [rles[t] if bool(valid[n, t]) else None for t in range(length)]
        out.categories.append(int(labels[n]))
        out.segmentations.append(seq)
        out.areas.append([None if r is None else float(mask_utils.area(r)) for r in seq])
        out.scores.append(1.0 if is_gt else float(data["scores"][n]))
        out.iscrowd.append(int(data["iscrowd"][n]) if is_gt and "iscrowd" in data else 0)
    return out


class VideoAP(TaggedRowsMetric):
    """Video AP/AR of YouTube-VIS, numerically identical to ``YTVOSeval(..., 'segm')``.

    Args:
        max_dets: detection caps for AR (the last one also caps AP), official ``(1, 10, 100)``.
        area_splits: area boundaries between small/medium/large, official ``(128², 256²)``.
    """

    tables: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "dets": (("video", "category", "rank", "score", "avg_area"), ("video", "category", "rank")),
        "gts": (("video", "category", "index", "avg_area", "crowd"), ("video", "category", "index")),
        "ious": (("video", "category", "rank", "index", "iou"), ("video", "category", "rank", "index")),
    }
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        max_dets: tuple[int, int, int] = (1, 10, 100),
        area_splits: tuple[float, float] = (128.0**2, 256.0**2),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_dets = tuple(int(m) for m in max_dets)
        self.area_splits = tuple(float(a) for a in area_splits)

    def update(
        self,
        preds: dict[str, Tensor] | VideoInstances,
        target: dict[str, Tensor] | VideoInstances,
        video_id: int | None = None,
    ) -> None:
        """Add one video.

        Args:
            preds: ``VideoInstances`` or ``{"masks": (N, T, H, W) bool, "scores": (N,), "labels": (N,)}``.
            target: ``VideoInstances`` or ``{"masks": (M, T, H, W) bool, "labels": (M,), "valid": (M, T)
                bool (optional; absent frames), "iscrowd": (M,) (optional)}``.
            video_id: integer video id (required with tensor inputs).
        """
        if not isinstance(target, VideoInstances):
            if video_id is None:
                raise ValueError("VideoAP.update needs video_id with tensor inputs")
            target = _tensor_instances(video_id, target, is_gt=True)
        if not isinstance(preds, VideoInstances):
            preds = _tensor_instances(target.video_id, preds, is_gt=False)
        self.add_tables(reduce_video(target, preds, self.max_dets[-1]))

    def add_tables(self, tables: dict[str, dict[str, np.ndarray]]) -> None:
        """Add the tables of :func:`reduce_video` (computed elsewhere, e.g. in a worker process)."""
        self._count_update()
        for name, cols in tables.items():
            self._append(name, **{k: torch.from_numpy(v) for k, v in cols.items()})

    def compute(self) -> dict[str, Tensor]:
        """The 12 stats (``STAT_NAMES``) as float64 scalars; −1 where there is no ground truth."""
        stats = evaluate_tables(self.rows("dets"), self.rows("gts"), self.rows("ious"), self.max_dets, self.area_splits)
        return {name: torch.tensor(float(v), dtype=torch.float64) for name, v in zip(STAT_NAMES, stats)}
