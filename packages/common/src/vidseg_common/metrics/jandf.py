"""DAVIS J&F (davis2017-evaluation) as a torchmetrics metric, plus the per-video scoring it is built on.

Protocols (docs/reference/vos.md §3.1, ``davis2017/evaluation.py``):

* ``semi-supervised``: the first and last frame of every video are dropped; ``num_objects`` is the
  largest id of the first GT frame (void 255 removed); a predicted id above it is an error (the
  official tool calls ``sys.exit``; we raise a :class:`DataError` naming the video); objects that are
  never predicted score as empty masks; void pixels are *not* excluded (official behaviour).
* ``unsupervised``: all frames, void pixels excluded, at most ``max_proposals`` predicted ids, each GT
  object matched to one proposal by the Hungarian algorithm on ``(mean J + mean F) / 2``. The official
  code labels the matched rows by proposal order; we label them by the GT object they were matched to
  (the global numbers are the same).

Each (video, object) pair is one entry; the global numbers are object-weighted means of the
per-object statistics (:func:`~vidseg_common.metrics.vos.db_statistics`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.errors import DataError
from vidseg_common.metrics._tagged import TaggedRowsMetric
from vidseg_common.metrics.vos import boundary_f_measure, boundary_tolerance, db_statistics, region_similarity
from vidseg_common.metrics.vos_cpu import frame_boxes, pair_scores_np

Protocol = Literal["semi-supervised", "unsupervised"]
Backend = Literal["auto", "torch", "numpy"]
GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


def mask_pair_scores(
    gt: Tensor, pred: Tensor, void: Tensor | None = None, bound_th: float = 0.008
) -> tuple[Tensor, Tensor]:
    """J and F per frame for one object, computed on the crop that holds both masks.

    Outside the bounding box of ``gt ∪ pred`` (over all frames, grown by one pixel for the boundary's
    half-pixel offset) both masks and both boundaries are empty, so cropping is exact; the boundary
    tolerance still comes from the full frame size.

    Args:
        gt, pred: ``(T, H, W)`` bool.
        void: optional ``(T, H, W)`` bool.

    Returns:
        ``(J, F)``, each ``(T,)`` float64.
    """
    num_frames, height, width = gt.shape
    present = (gt | pred).any(dim=0)
    rows = present.any(dim=1).nonzero().flatten()
    if rows.numel() == 0:  # both empty in every frame
        ones = torch.ones(num_frames, dtype=torch.float64, device=gt.device)
        return ones, ones.clone()
    cols = present.any(dim=0).nonzero().flatten()
    y0, y1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, height)
    x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, width)
    g, p = gt[:, y0:y1, x0:x1], pred[:, y0:y1, x0:x1]
    v = void[:, y0:y1, x0:x1] if void is not None else None
    j = region_similarity(g, p, v)
    f = boundary_f_measure(g, p, v, bound_th=bound_th, frame_size=(height, width))
    return j, f


def score_video(
    gt_labels: Tensor,
    pred_labels: Tensor,
    video: str = "video",
    protocol: Protocol = "semi-supervised",
    bound_th: float = 0.008,
    max_proposals: int = 20,
    num_objects: int | None = None,
    backend: Backend = "auto",
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-object, per-frame J and F of one video under a DAVIS protocol.

    Args:
        gt_labels: ``(T, H, W)`` integer ids, 0 = background, 255 = void; all frames of the video.
        pred_labels: ``(T, H, W)`` integer ids for the same frames.
        video: name used in error messages.
        num_objects: number of GT objects; default: the largest id of the first GT frame (official).
        backend: ``"torch"`` (any device), ``"numpy"`` (CPU: numpy + cv2 on crops,
            :mod:`~vidseg_common.metrics.vos_cpu`), ``"auto"``: numpy for CPU tensors, torch otherwise.

    Returns:
        ``(object_ids (K,), J (K, T'), F (K, T'))`` where ``T' = T − 2`` (semi-supervised) or ``T``.
    """
    if gt_labels.ndim != 3 or gt_labels.shape != pred_labels.shape:
        raise DataError(
            f"{video}: prediction shape {tuple(pred_labels.shape)} does not match ground truth {tuple(gt_labels.shape)}"
        )
    device = gt_labels.device
    use_numpy = backend == "numpy" or (backend == "auto" and device.type == "cpu")
    gt: Any = gt_labels.cpu().numpy() if use_numpy else gt_labels
    pred: Any = pred_labels.cpu().numpy() if use_numpy else pred_labels
    void = gt == VOID_ID
    gt_clean = gt * ~void  # void pixels become background (official)
    if num_objects is None:
        num_objects = int(gt_clean[0].max())
    if protocol == "semi-supervised":
        if gt.shape[0] < 3:
            raise DataError(f"{video}: the semi-supervised protocol drops the first and last frame; needs ≥ 3 frames")
        gt_eval, pred_eval, void_eval = gt_clean[1:-1], pred[1:-1], None
    elif protocol == "unsupervised":
        gt_eval, pred_eval, void_eval = gt_clean, pred, void
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    num_pred = int(pred_eval.max()) if pred_eval.size != 0 else 0
    object_ids = torch.arange(1, num_objects + 1, device=device)
    score = pair_scorer(gt_eval, pred_eval, void_eval, bound_th, "numpy" if use_numpy else "torch", device)
    if protocol == "semi-supervised":
        if num_pred > num_objects:
            hint = " (255 is void in DAVIS-2017: 0/255 masks are DAVIS-2016 style)" if num_pred == VOID_ID else ""
            raise DataError(
                f"{video}: the prediction holds object id {num_pred} but the ground truth has only {num_objects}"
                f" object(s) (ids in the first annotated frame){hint}"
            )
        pairs = [score(o, o) for o in range(1, num_objects + 1)]
        if not pairs:
            empty = torch.zeros(0, gt_eval.shape[0], dtype=torch.float64, device=device)
            return object_ids, empty, empty.clone()
        return object_ids, torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
    if num_pred > max_proposals:
        raise DataError(f"{video}: the prediction holds id {num_pred}, more than max_proposals={max_proposals}")
    num_props = max(num_pred, num_objects)
    j_all = torch.zeros(num_props, num_objects, gt_eval.shape[0], dtype=torch.float64, device=device)
    f_all = torch.zeros_like(j_all)
    for p in range(num_props):
        for o in range(num_objects):
            j_all[p, o], f_all[p, o] = score(o + 1, p + 1)
    cost = ((j_all.mean(dim=2) + f_all.mean(dim=2)) / 2).cpu().numpy()
    rows, cols = linear_sum_assignment(-cost)
    order = np.argsort(cols)
    rows, cols = rows[order], cols[order]
    return object_ids[torch.as_tensor(cols)], j_all[rows, cols], f_all[rows, cols]


def pair_scorer(
    gt: Any, pred: Any, void: Any, bound_th: float, backend: Backend, device: torch.device
) -> Callable[[int, int], tuple[Tensor, Tensor]]:
    """``score(gt_id, pred_id) -> (J (T,), F (T,))`` on numpy arrays (CPU path) or tensors (torch path)."""
    if backend == "numpy":
        gt_np, pred_np = gt.astype(np.uint8, copy=False), pred.astype(np.uint8, copy=False)
        boxes = frame_boxes(gt_np, pred_np)
        radius = boundary_tolerance(gt.shape[-2], gt.shape[-1], bound_th)

        def score_np(gt_id: int, pred_id: int) -> tuple[Tensor, Tensor]:
            j, f = pair_scores_np(gt_np, pred_np, gt_id, pred_id, radius, boxes, void)
            return torch.from_numpy(j).to(device), torch.from_numpy(f).to(device)

        return score_np
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r}")
    return lambda gt_id, pred_id: mask_pair_scores(gt == gt_id, pred == pred_id, void, bound_th)


def summarize_objects(j_values: list[np.ndarray], f_values: list[np.ndarray]) -> dict[str, float]:
    """The global DAVIS table from per-object J and F vectors (object-weighted means)."""
    if not j_values:
        return {name: float("nan") for name in GLOBAL_COLUMNS}
    j_stats = np.array([db_statistics(v) for v in j_values])
    f_stats = np.array([db_statistics(v) for v in f_values])
    j_mean, f_mean = float(np.mean(j_stats[:, 0])), float(np.mean(f_stats[:, 0]))
    return {
        "J&F-Mean": (j_mean + f_mean) / 2.0,
        "J-Mean": j_mean,
        "J-Recall": float(np.mean(j_stats[:, 1])),
        "J-Decay": float(np.mean(j_stats[:, 2])),
        "F-Mean": f_mean,
        "F-Recall": float(np.mean(f_stats[:, 1])),
        "F-Decay": float(np.mean(f_stats[:, 2])),
    }


class JandF(TaggedRowsMetric):
    """DAVIS J&F: J-Mean/Recall/Decay, F-Mean/Recall/Decay and J&F-Mean, exactly as davis2017-evaluation.

    ``update`` takes one whole video at a time and reduces it to per-frame J and F rows tagged with
    (video, object, frame), so a DDP sync is a concatenation and duplicated videos are dropped.

    Args:
        protocol: ``"semi-supervised"`` (default) or ``"unsupervised"``.
        bound_th: boundary tolerance (fraction of the diagonal, or pixels if ≥ 1).
        max_proposals: unsupervised protocol only: most predicted ids allowed per video.
    """

    tables: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "rows": (("video", "object", "frame", "j", "f"), ("video", "object", "frame")),
    }
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self, protocol: Protocol = "semi-supervised", bound_th: float = 0.008, max_proposals: int = 20, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if protocol not in ("semi-supervised", "unsupervised"):
            raise ValueError(f"protocol must be 'semi-supervised' or 'unsupervised', got {protocol!r}")
        self.protocol = protocol
        self.bound_th = bound_th
        self.max_proposals = max_proposals

    def update(self, preds: Tensor, target: Tensor, video: str | int, num_objects: int | None = None) -> None:
        """Score one whole video.

        Args:
            preds: ``(T, H, W)`` (or ``(1, T, H, W)``) predicted ids, all frames including the first.
            target: ``(T, H, W)`` GT ids (255 = void).
            video: video name or id (tags the rows; a repeated video is counted once).
            num_objects: optional override of the number of GT objects.
        """
        if preds.ndim == 4 and preds.shape[0] == 1:
            preds, target = preds[0], target[0]
        objects, j, f = score_video(
            target, preds, str(video), self.protocol, self.bound_th, self.max_proposals, num_objects
        )
        self.add_scores(video, objects, j, f)

    def add_scores(self, video: str | int, objects: Tensor, j: Tensor, f: Tensor) -> None:
        """Add the output of :func:`score_video` computed elsewhere (e.g. in a worker process).

        Args:
            objects: ``(K,)`` object ids; j, f: ``(K, T')`` per-frame values of the scored frames.
        """
        self._count_update()
        key = self._register_video(video)
        num_objects, num_frames = j.shape
        first = 1 if self.protocol == "semi-supervised" else 0
        frames = torch.arange(first, first + num_frames).repeat(num_objects)
        self._append(
            "rows",
            video=torch.full((j.numel(),), float(key), dtype=torch.float64),
            object=torch.as_tensor(objects).repeat_interleave(num_frames),
            frame=frames,
            j=torch.as_tensor(j).reshape(-1),
            f=torch.as_tensor(f).reshape(-1),
        )

    def per_object(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """(video key, object id) → (J per frame, F per frame), from the (synced) rows."""
        rows = self.rows()
        out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        if rows["video"].size == 0:
            return out
        pair = np.stack([rows["video"], rows["object"]], axis=1)
        keys, starts = np.unique(pair, axis=0, return_index=True)
        bounds = [*starts.tolist(), len(pair)]
        for i, (vid, obj) in enumerate(keys):
            sl = slice(bounds[i], bounds[i + 1])
            out[(int(vid), int(obj))] = (rows["j"][sl], rows["f"][sl])
        return out

    def compute(self) -> dict[str, Tensor]:
        """The global table as float64 scalars (``GLOBAL_COLUMNS``); NaN if nothing was scored."""
        per_obj = self.per_object()
        table = summarize_objects([v[0] for v in per_obj.values()], [v[1] for v in per_obj.values()])
        return {name: torch.tensor(value, dtype=torch.float64) for name, value in table.items()}

    def per_object_table(self) -> dict[str, dict[str, float]]:
        """``"<video>_<object>"`` → J-Mean, F-Mean (collective under DDP: call on every rank)."""
        names = self.video_names()
        return {
            f"{names.get(vid, vid)}_{obj}": {"J-Mean": float(np.mean(j)), "F-Mean": float(np.mean(f))}
            for (vid, obj), (j, f) in self.per_object().items()
        }
