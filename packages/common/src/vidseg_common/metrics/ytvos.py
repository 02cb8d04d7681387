"""YouTube-VOS J/F for seen and unseen categories and a *local proxy* of the overall score G.

The real YouTube-VOS score is only computed by the evaluation server (docs/reference/vos.md §3.7). This metric is
the local stand-in for a held-out split with ground truth: J and F as in DAVIS
(:mod:`vidseg_common.metrics.vos`), computed for each object on the **annotated frames after the
object's first appearance** (the frame where it first appears is the one given to the tracker and is
not scored; whether the server scores it is unknown). Objects are grouped by whether their category
was seen in training; ``J_seen``/``F_seen``/``J_unseen``/``F_unseen`` are object-weighted means of the
per-object frame means, and ``G_proxy`` is the mean of the four — or of the available ones when a
group has no objects (e.g. a held-out *train* split has only seen categories), which the real G never
does. Report it as "G (proxy)", never as G.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.errors import DataError
from vidseg_common.metrics._tagged import TaggedRowsMetric
from vidseg_common.metrics.jandf import pair_scorer

SCORE_NAMES = ("G_proxy", "J_seen", "F_seen", "J_unseen", "F_unseen")


def score_video_after_first_appearance(
    gt_labels: Tensor, pred_labels: Tensor, annotated: Tensor | None = None, video: str = "video",
    bound_th: float = 0.008,
) -> dict[int, tuple[Tensor, Tensor, Tensor]]:  # fmt: skip
    """Per object: (scored frame indices, J, F) on the annotated frames after its first appearance.

    Args:
        gt_labels, pred_labels: ``(T, H, W)`` ids (GT 255 = void, ignored as an id).
        annotated: ``(T,)`` bool, which frames carry ground truth (default: all).

    Raises:
        DataError: shape mismatch, or a predicted id that is no GT object of the video.
    """
    if gt_labels.ndim != 3 or gt_labels.shape != pred_labels.shape:
        raise DataError(f"{video}: prediction shape {tuple(pred_labels.shape)} != ground truth {tuple(gt_labels.shape)}")
    num_frames = gt_labels.shape[0]
    annotated = torch.ones(num_frames, dtype=torch.bool) if annotated is None else annotated.bool().cpu()
    ann_idx = annotated.nonzero().flatten().tolist()
    gt_ann = gt_labels[ann_idx]
    ids = [int(v) for v in torch.unique(gt_ann).tolist() if v not in (0, VOID_ID)]
    pred_ids = {int(v) for v in torch.unique(pred_labels[ann_idx]).tolist()} - {0}
    unknown = sorted(pred_ids - set(ids))
    if unknown:
        raise DataError(f"{video}: predicted object id(s) {unknown} are not annotated in the ground truth (ids {ids})")
    out = {}
    for obj in ids:
        present = (gt_ann == obj).flatten(1).any(dim=1)
        first = int(present.nonzero()[0])
        frames = ann_idx[first + 1 :]
        if not frames:
            continue
        gt_f, pred_f = gt_labels[frames], pred_labels[frames]
        if gt_labels.device.type == "cpu":  # numpy + cv2 fast path (same numbers as the torch path)
            gt_f, pred_f, backend = gt_f.numpy(), pred_f.numpy(), "numpy"
        else:
            backend = "torch"
        j, f = pair_scorer(gt_f, pred_f, None, bound_th, backend, gt_labels.device)(obj, obj)
        out[obj] = (torch.tensor(frames), j, f)
    return out


class YouTubeVOSScore(TaggedRowsMetric):
    """J/F seen/unseen and ``G_proxy`` on a local YouTube-VOS-style split (see the module docstring)."""

    tables: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
        "rows": (("video", "object", "frame", "j", "f", "seen"), ("video", "object", "frame")),
    }
    higher_is_better: ClassVar[bool] = True

    def __init__(self, bound_th: float = 0.008, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bound_th = bound_th

    def update(
        self,
        preds: Tensor,
        target: Tensor,
        video: str | int,
        seen: Mapping[int, bool] | Sequence[bool] | bool = True,
        annotated: Tensor | None = None,
    ) -> None:
        """Score one whole video.

        Args:
            preds: ``(T, H, W)`` predicted ids; target: ``(T, H, W)`` GT ids.
            seen: per object id (mapping, or a sequence indexed by ``id − 1``, or one bool for all):
                whether its category is among the training categories.
            annotated: ``(T,)`` bool, frames that carry ground truth (default: all).
        """
        for obj, (frames, j, f) in score_video_after_first_appearance(
            target, preds, annotated, str(video), self.bound_th
        ).items():
            if isinstance(seen, bool):
                is_seen = seen
            elif isinstance(seen, Mapping):
                is_seen = bool(seen[obj])
            else:
                is_seen = bool(seen[obj - 1])
            self.add_object_scores(video, obj, frames, j, f, is_seen)

    def add_object_scores(
        self, video: str | int, obj: int, frames: Tensor, j: Tensor, f: Tensor, seen: bool
    ) -> None:
        """Add one object's per-frame scores computed elsewhere (``frames``, ``j``, ``f``: ``(N,)``)."""
        self._count_update()
        key = self._register_video(video)
        n = len(frames)
        self._append("rows", video=torch.full((n,), float(key), dtype=torch.float64),
                     object=torch.full((n,), float(obj), dtype=torch.float64), frame=torch.as_tensor(frames),
                     j=torch.as_tensor(j), f=torch.as_tensor(f),
                     seen=torch.full((n,), float(seen), dtype=torch.float64))  # fmt: skip

    def compute(self) -> dict[str, Tensor]:
        """``G_proxy``, ``J_seen``, ``F_seen``, ``J_unseen``, ``F_unseen`` (NaN for an empty group)."""
        rows = self.rows()
        groups: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
        if rows["video"].size:
            pair = np.stack([rows["video"], rows["object"]], axis=1)
            _, starts = np.unique(pair, axis=0, return_index=True)
            bounds = [*starts.tolist(), len(pair)]
            for a, b in itertools.pairwise(bounds):
                js, fs = groups[bool(rows["seen"][a])]
                js.append(float(np.mean(rows["j"][a:b])))
                fs.append(float(np.mean(rows["f"][a:b])))
        nan = float("nan")
        scores = {
            "J_seen": float(np.mean(groups[True][0])) if groups[True][0] else nan,
            "F_seen": float(np.mean(groups[True][1])) if groups[True][1] else nan,
            "J_unseen": float(np.mean(groups[False][0])) if groups[False][0] else nan,
            "F_unseen": float(np.mean(groups[False][1])) if groups[False][1] else nan,
        }
        parts = [v for v in scores.values() if not np.isnan(v)]
        scores["G_proxy"] = float(np.mean(parts)) if parts else nan
        return {name: torch.tensor(scores[name], dtype=torch.float64) for name in SCORE_NAMES}
