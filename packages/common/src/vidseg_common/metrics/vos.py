"""Region similarity J and boundary F-measure of davis2017-evaluation, vectorised with torch.

Definitions follow ``davis2017/metrics.py`` and ``davis2017/utils.py`` exactly (reference: docs/reference/vos.md §3):

* J (``db_eval_iou``): ``|G ∩ P \\ V| / |G ∪ P \\ V|``, and 1 when the union is empty.
* F (``f_measure``): 1-px boundaries from :func:`seg2bmap`, matched within a disk of radius
  ``ceil(0.008 · ‖(H, W)‖₂)`` (skimage ``disk``: offsets with ``dy² + dx² ≤ r²``; ``cv2.dilate`` with
  it, zero outside the frame), precision over the predicted boundary, recall over the GT boundary.
* Per-object statistics (``db_statistics``): mean, recall (fraction > 0.5) and decay over 4 bins.

Every function takes masks ``(..., H, W)`` (any leading shape, e.g. frames ``(T, H, W)``) on any
device and returns per-frame values in float64. The dilation is never materialised: for each boundary
pixel of one map we test the disk offsets in the other map (a gather), so the cost is proportional to
the boundary length, not to the frame area times the disk area.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

from vidseg_common.errors import ConfigError

_GATHER_CHUNK = 1 << 16
"""Boundary pixels processed per gather chunk (bounds the ``(chunk, disk)`` index tensor)."""


def boundary_tolerance(height: int, width: int, bound_th: float = 0.008) -> int:
    """Disk radius in pixels: ``bound_th`` itself if ≥ 1, else ``ceil(bound_th · ‖(H, W)‖₂)``.

    480×854 gives 8 px; 100×100 gives 2 px (the tolerance depends on the evaluated resolution).
    """
    if bound_th >= 1:
        if float(bound_th) != int(bound_th):
            raise ConfigError(f"bound_th={bound_th}: a tolerance ≥ 1 is a radius in pixels and must be an integer")
        return int(bound_th)
    if bound_th <= 0:
        raise ConfigError(f"bound_th={bound_th} must be positive")
    return math.ceil(bound_th * float(np.linalg.norm([height, width])))


def disk_offsets(radius: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """``(dy, dx)`` int64 offsets of skimage's ``disk(radius)``: all integer points with ``dy² + dx² ≤ r²``.

    ``disk(8)`` has 197 points (a 17×17 footprint).
    """
    span = torch.arange(-radius, radius + 1, device=device)
    dy, dx = torch.meshgrid(span, span, indexing="ij")
    inside = dy * dy + dx * dx <= radius * radius
    return dy[inside], dx[inside]


def seg2bmap(masks: Tensor) -> Tensor:
    """1-px boundary map of binary masks, exactly ``davis2017.metrics._seg2bmap``.

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour. The
    official special cases of the last row (``m ^ e``), last column (``m ^ s``) and corner (0) are the
    same rule applied with the mask replicated one pixel past the bottom and right edges.

    Args:
        masks: ``(..., H, W)``, non-zero = foreground.

    Returns:
        ``(..., H, W)`` bool.
    """
    m = masks != 0
    padded = torch.cat([m, m[..., -1:, :]], dim=-2)
    padded = torch.cat([padded, padded[..., :, -1:]], dim=-1)
    east = padded[..., :-1, 1:]
    south = padded[..., 1:, :-1]
    south_east = padded[..., 1:, 1:]
    return (m ^ east) | (m ^ south) | (m ^ south_east)


def region_similarity(gt: Tensor, pred: Tensor, void: Tensor | None = None) -> Tensor:
    """J (``db_eval_iou``) per mask.

    Args:
        gt, pred: ``(..., H, W)`` binary masks of the same shape.
        void: optional ``(..., H, W)`` (or broadcastable) mask of pixels to ignore.

    Returns:
        ``(...)`` float64; 1 where the union is empty.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"region_similarity: gt {tuple(gt.shape)} and pred {tuple(pred.shape)} differ")
    g, p = gt != 0, pred != 0
    if void is not None:
        keep = void == 0
        g, p = g & keep, p & keep
    inter = (g & p).sum(dim=(-2, -1), dtype=torch.int64)
    union = (g | p).sum(dim=(-2, -1), dtype=torch.int64)
    j = inter.double() / union.clamp_min(1).double()
    return torch.where(union == 0, torch.ones_like(j), j)


def count_within(source: Tensor, query: Tensor, radius: int) -> Tensor:
    """Number of ``query`` pixels that have a ``source`` pixel within ``disk(radius)``.

    Equals ``sum(query & cv2.dilate(source, disk(radius)))`` per map (zero outside the frame).

    Args:
        source, query: ``(N, H, W)`` bool.

    Returns:
        ``(N,)`` int64.
    """
    n_maps, height, width = source.shape
    counts = torch.zeros(n_maps, dtype=torch.int64, device=source.device)
    idx_n, idx_y, idx_x = query.nonzero(as_tuple=True)
    if idx_n.numel() == 0:
        return counts
    pad_h, pad_w = height + 2 * radius, width + 2 * radius
    padded = torch.zeros(n_maps, pad_h, pad_w, dtype=torch.bool, device=source.device)
    padded[:, radius : radius + height, radius : radius + width] = source
    flat = padded.reshape(-1)
    dy, dx = disk_offsets(radius, source.device)
    offsets = dy * pad_w + dx
    base = (idx_n * pad_h + idx_y + radius) * pad_w + idx_x + radius
    for base_chunk, n_chunk in zip(base.split(_GATHER_CHUNK), idx_n.split(_GATHER_CHUNK)):
        hit = flat[base_chunk[:, None] + offsets[None, :]].any(dim=1)
        counts.index_add_(0, n_chunk, hit.to(torch.int64))
    return counts


def boundary_f_measure(
    gt: Tensor,
    pred: Tensor,
    void: Tensor | None = None,
    bound_th: float = 0.008,
    frame_size: tuple[int, int] | None = None,
) -> Tensor:
    """F (``f_measure``) per mask.

    Args:
        gt, pred: ``(..., H, W)`` binary masks.
        void: optional ``(..., H, W)`` pixels zeroed in both masks before the boundaries are taken.
        bound_th: tolerance, a fraction of the frame diagonal (< 1) or a radius in pixels (≥ 1).
        frame_size: ``(H, W)`` of the full frame when ``gt``/``pred`` are crops of it (the tolerance
            depends on the full size); defaults to the masks' own size.

    Returns:
        ``(...)`` float64. Both boundaries empty → 1; exactly one empty → 0.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"boundary_f_measure: gt {tuple(gt.shape)} and pred {tuple(pred.shape)} differ")
    lead, (height, width) = gt.shape[:-2], gt.shape[-2:]
    full_h, full_w = frame_size if frame_size is not None else (height, width)
    radius = boundary_tolerance(full_h, full_w, bound_th)
    g, p = gt != 0, pred != 0
    if void is not None:
        keep = void == 0
        g, p = g & keep, p & keep
    b_gt = seg2bmap(g).reshape(-1, height, width)
    b_pred = seg2bmap(p).reshape(-1, height, width)
    n_gt = b_gt.sum(dim=(-2, -1), dtype=torch.int64)
    n_fg = b_pred.sum(dim=(-2, -1), dtype=torch.int64)
    fg_match = count_within(b_gt, b_pred, radius)  # predicted boundary pixels near the GT boundary
    gt_match = count_within(b_pred, b_gt, radius)
    precision = fg_match.double() / n_fg.clamp_min(1).double()
    recall = gt_match.double() / n_gt.clamp_min(1).double()
    # Official cases: n_fg = 0 → P = 1; n_gt = 0 → R = 1 (and the other one 0 unless both are empty).
    precision = torch.where(n_fg == 0, 1.0, torch.where(n_gt == 0, 0.0, precision))
    recall = torch.where(n_gt == 0, 1.0, torch.where(n_fg == 0, 0.0, recall))
    denom = precision + recall
    f = torch.where(denom == 0, 0.0, 2 * precision * recall / torch.where(denom == 0, 1.0, denom))
    return f.reshape(lead)


def decay_bin_edges(num_frames: int, num_bins: int = 4) -> np.ndarray:
    """Start indices of the decay bins, ``round(linspace(1, N, bins + 1) + 1e-10) − 1``.

    The official code casts these to uint8, which wraps for N > 256 (N = 300 gives [0, 75, 150, 224, 43]);
    we keep int64, i.e. the correct indices. Identical to the official values for N ≤ 256.
    """
    return (np.round(np.linspace(1, num_frames, num_bins + 1) + 1e-10) - 1).astype(np.int64)


def db_statistics(values: np.ndarray | Tensor) -> tuple[float, float, float]:
    """Mean, recall and decay of one object's per-frame values (``davis2017.utils.db_statistics``).

    ``M = nanmean(v)``, ``O = mean(v > 0.5)``, ``D = nanmean(bin0) − nanmean(bin3)`` with bins
    ``v[ids[i] : ids[i + 1] + 1]`` (adjacent bins share a frame; see :func:`decay_bin_edges`).
    """
    v = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(values, np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"db_statistics needs a non-empty 1-D vector, got shape {v.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(v))
        recall = float(np.nanmean(v > 0.5))
        ids = decay_bin_edges(v.size)
        bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay
