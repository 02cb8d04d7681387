"""COCO-style matching, accumulation and summary of ``YTVOSeval`` on reduced per-video tables.

Mirrors ``evaluateVid`` / ``accumulate`` / ``summarize`` of youtubevos/cocoapi (docs/reference/vis.md §4.4) including
its tie rules: stable (mergesort) score sorts, non-ignored GTs first, ``≥`` IoU comparison so that the
later GT wins ties, thresholds capped at ``1 − 1e-10``, ``np.spacing(1)`` in the precision denominator,
right-to-left precision envelope and ``searchsorted(..., 'left')`` at the recall thresholds.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _group(table: dict[str, np.ndarray], index_col: str) -> dict[tuple[int, int], np.ndarray]:
    """(video, category) → row indices of ``table`` ordered by ``index_col`` (tables are key-sorted)."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row, (vid, cat) in enumerate(zip(table["video"].tolist(), table["category"].tolist())):
        groups[(int(vid), int(cat))].append(row)
    return {key: np.asarray(rows)[np.argsort(table[index_col][rows], kind="mergesort")] for key, rows in groups.items()}


def _match(
    ious: np.ndarray, gt_ignore: np.ndarray, crowd: np.ndarray, det_area: np.ndarray, area_rng: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``evaluateVid`` for one (video, category, area range): ``(dt_matched (T, D), dt_ignore (T, D), gt_ignore)``."""
    gt_order = np.argsort(gt_ignore, kind="mergesort")
    gt_ig = gt_ignore[gt_order].astype(bool)
    iscrowd = crowd[gt_order].astype(bool)
    ious = ious[:, gt_order] if ious.size else ious
    num_t, num_d, num_g = len(IOU_THRESHOLDS), ious.shape[0], len(gt_order)
    gt_matched = np.zeros((num_t, num_g), dtype=bool)
    dt_matched = np.zeros((num_t, num_d), dtype=bool)
    dt_ig = np.zeros((num_t, num_d), dtype=bool)
    if num_d and num_g:
        for t_idx, thr in enumerate(IOU_THRESHOLDS):
            for d in range(num_d):
                best = min(thr, 1 - 1e-10)
                m = -1
                for g in range(num_g):
                    if gt_matched[t_idx, g] and not iscrowd[g]:
                        continue
                    if m > -1 and not gt_ig[m] and gt_ig[g]:
                        break
                    if ious[d, g] < best:
                        continue
                    best = ious[d, g]
                    m = g
                if m == -1:
                    continue
                dt_ig[t_idx, d] = gt_ig[m]
                dt_matched[t_idx, d] = True
                gt_matched[t_idx, m] = True
    outside = (det_area < area_rng[0]) | (det_area > area_rng[1])
    dt_ig = dt_ig | (~dt_matched & outside[None, :])
    return dt_matched, dt_ig, gt_ig


def evaluate_tables(
    dets: dict[str, np.ndarray],
    gts: dict[str, np.ndarray],
    ious: dict[str, np.ndarray],
    max_dets: tuple[int, ...] = (1, 10, 100),
    area_splits: tuple[float, ...] = (128.0**2, 256.0**2),
) -> np.ndarray:
    """The 12 ``YTVOSeval.stats`` from the reduced tables (−1 where a stat has no ground truth)."""
    area_rngs = [(0.0, 1e5**2), (0.0, area_splits[0]), (area_splits[0], area_splits[1]), (area_splits[1], 1e5**2)]
    det_groups, gt_groups = _group(dets, "rank"), _group(gts, "index")
    iou_lookup: dict[tuple[int, int], np.ndarray] = {}
    for key, rows in _group(ious, "rank").items():
        num_d, num_g = len(det_groups.get(key, [])), len(gt_groups.get(key, []))
        mat = np.zeros((num_d, num_g))
        mat[ious["rank"][rows].astype(int), ious["index"][rows].astype(int)] = ious["iou"][rows]
        iou_lookup[key] = mat
    keys = sorted(set(det_groups) | set(gt_groups))
    categories = sorted({c for _, c in keys})
    videos = sorted({v for v, _ in keys})
    num_t, num_r = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = -np.ones((num_t, num_r, len(categories), len(area_rngs), len(max_dets)))
    recall = -np.ones((num_t, len(categories), len(area_rngs), len(max_dets)))
    empty = np.zeros(0, dtype=np.int64)
    for k, cat in enumerate(categories):
        for a, rng in enumerate(area_rngs):
            per_video = []
            for vid in videos:
                d_rows, g_rows = det_groups.get((vid, cat), empty), gt_groups.get((vid, cat), empty)
                if len(d_rows) == 0 and len(g_rows) == 0:
                    continue
                gt_area, crowd = gts["avg_area"][g_rows], gts["crowd"][g_rows]
                gt_ignore = (crowd > 0) | (gt_area < rng[0]) | (gt_area > rng[1])
                mat = iou_lookup.get((vid, cat), np.zeros((len(d_rows), len(g_rows))))
                matched, dt_ig, gt_ig = _match(mat, gt_ignore, crowd, dets["avg_area"][d_rows], rng)
                per_video.append((dets["score"][d_rows], matched, dt_ig, gt_ig))
            if not per_video:
                continue
            for m, max_det in enumerate(max_dets):
                _accumulate(per_video, max_det, precision[:, :, k, a, m], recall[:, k, a, m])
    return _summarize(precision, recall, max_dets)


def _accumulate(per_video: list, max_det: int, precision: np.ndarray, recall: np.ndarray) -> None:
    scores = np.concatenate([v[0][:max_det] for v in per_video])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([v[1][:, :max_det] for v in per_video], axis=1)[:, order]
    dt_ig = np.concatenate([v[2][:, :max_det] for v in per_video], axis=1)[:, order]
    gt_ig = np.concatenate([v[3] for v in per_video])
    npig = np.count_nonzero(~gt_ig)
    if npig == 0:
        return
    tp_sum = np.cumsum(matched & ~dt_ig, axis=1).astype(np.float64)
    fp_sum = np.cumsum(~matched & ~dt_ig, axis=1).astype(np.float64)
    for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
        nd = len(tp)
        rc = tp / npig
        pr = tp / (fp + tp + np.spacing(1))
        recall[t] = rc[-1] if nd else 0
        pr = np.maximum.accumulate(pr[::-1])[::-1] if nd else pr
        inds = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        q = np.zeros(len(RECALL_THRESHOLDS))
        valid = inds < nd
        q[valid] = pr[inds[valid]]
        precision[t] = q


def _summarize(precision: np.ndarray, recall: np.ndarray, max_dets: tuple[int, ...]) -> np.ndarray:
    def mean_valid(s: np.ndarray) -> float:
        return -1.0 if s[s > -1].size == 0 else float(np.mean(s[s > -1]))

    def ap(thr: float | None = None, area: int = 0, m: int = -1) -> float:
        s = precision if thr is None else precision[np.where(thr == IOU_THRESHOLDS)[0]]
        return mean_valid(s[:, :, :, area, m])

    def ar(area: int = 0, m: int = -1) -> float:
        return mean_valid(recall[:, :, area, m])

    last = len(max_dets) - 1
    return np.array(
        [ap(), ap(0.5), ap(0.75), ap(area=1), ap(area=2), ap(area=3),
         ar(m=0), ar(m=1), ar(m=last), ar(area=1), ar(area=2), ar(area=3)]
    )  # fmt: skip
