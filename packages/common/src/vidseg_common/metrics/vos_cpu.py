"""CPU fast path of per-frame J and F (same definitions as :mod:`vidseg_common.metrics.vos`).

On CPU, torch's comparison / reduction / ``nonzero`` kernels are slow for byte masks, so for CPU
tensors the per-video scorer uses numpy and OpenCV on small crops instead:

* each frame is cropped to the bounding box of all non-zero labels of GT and prediction, then to the
  box of the object pair, grown by one pixel (the boundary sits half a pixel toward the origin); outside
  it both masks and both boundaries are empty, so cropping is exact. Where the crop touches the
  bottom/right image edge the official last-row/column rule of ``_seg2bmap`` applies (replicate pad);
* the boundary match uses ``cv2.dilate`` with skimage's disk, exactly what davis2017-evaluation runs.

Tests check this path against the torch path and against the official reference on random masks.
"""

from __future__ import annotations

import cv2
import numpy as np


def disk_kernel(radius: int) -> np.ndarray:
    """skimage ``disk(radius)`` as ``uint8``: ones where ``dy² + dx² ≤ r²``."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (yy * yy + xx * xx <= radius * radius).astype(np.uint8)


def seg2bmap_np(mask: np.ndarray) -> np.ndarray:
    """``_seg2bmap`` of one ``(H, W)`` bool mask, including the official last-row/column/corner rule."""
    b = np.empty_like(mask)
    inner = mask[:-1, :-1]
    b[:-1, :-1] = (inner ^ mask[:-1, 1:]) | (inner ^ mask[1:, :-1]) | (inner ^ mask[1:, 1:])
    b[-1, :-1] = mask[-1, :-1] ^ mask[-1, 1:]  # last row: east neighbour only
    b[:-1, -1] = mask[:-1, -1] ^ mask[1:, -1]  # last column: south neighbour only
    b[-1, -1] = False
    return b


def _span(any_axis: np.ndarray) -> tuple[int, int] | None:
    idx = np.flatnonzero(any_axis)
    return (int(idx[0]), int(idx[-1])) if idx.size else None


def frame_boxes(gt: np.ndarray, pred: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """Per frame, the window ``(y0, y1, x0, x1)`` (end-exclusive) holding every non-zero label plus margin."""
    nonzero = np.maximum(gt, pred)
    rows, cols = nonzero.max(axis=2) > 0, nonzero.max(axis=1) > 0
    height, width = gt.shape[1:]
    boxes: list[tuple[int, int, int, int] | None] = []
    for t in range(gt.shape[0]):
        ys, xs = _span(rows[t]), _span(cols[t])
        if ys is None or xs is None:
            boxes.append(None)
        else:
            boxes.append((max(ys[0] - 1, 0), min(ys[1] + 2, height), max(xs[0] - 1, 0), min(xs[1] + 2, width)))
    return boxes


def pair_scores_np(
    gt: np.ndarray,
    pred: np.ndarray,
    gt_id: int,
    pred_id: int,
    radius: int,
    boxes: list[tuple[int, int, int, int] | None],
    void: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """J and F per frame of GT object ``gt_id`` vs predicted object ``pred_id``.

    Args:
        gt, pred: ``(T, H, W)`` uint8 ids (GT void already removed).
        radius: boundary tolerance in pixels (of the full frame).
        boxes: :func:`frame_boxes` of ``gt``/``pred``.
        void: optional ``(T, H, W)`` bool pixels excluded from both masks.

    Returns:
        ``(J, F)``: ``(T,)`` float64 each.
    """
    kernel = disk_kernel(radius)
    num_frames = gt.shape[0]
    j_out, f_out = np.ones(num_frames), np.ones(num_frames)
    for t, box in enumerate(boxes):
        if box is None:
            continue
        y0, y1, x0, x1 = box
        g, p = gt[t, y0:y1, x0:x1] == gt_id, pred[t, y0:y1, x0:x1] == pred_id
        if void is not None:
            keep = ~void[t, y0:y1, x0:x1]
            g, p = g & keep, p & keep
        both = g | p
        ys, xs = _span(both.any(axis=1)), _span(both.any(axis=0))
        if ys is None or xs is None:
            continue  # both empty in this frame: J = F = 1
        h, w = both.shape
        sub = (slice(max(ys[0] - 1, 0), min(ys[1] + 2, h)), slice(max(xs[0] - 1, 0), min(xs[1] + 2, w)))
        g, p = g[sub], p[sub]
        union = np.count_nonzero(g | p)
        j_out[t] = np.count_nonzero(g & p) / union
        b_gt, b_pred = seg2bmap_np(g), seg2bmap_np(p)
        n_gt, n_fg = np.count_nonzero(b_gt), np.count_nonzero(b_pred)
        if n_fg == 0 or n_gt == 0:
            f_out[t] = 1.0 if n_fg == n_gt else 0.0
            continue
        fg_match = np.count_nonzero(b_pred & cv2.dilate(b_gt.view(np.uint8), kernel).view(bool))
        gt_match = np.count_nonzero(b_gt & cv2.dilate(b_pred.view(np.uint8), kernel).view(bool))
        precision, recall = fg_match / float(n_fg), gt_match / float(n_gt)
        f_out[t] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return j_out, f_out
