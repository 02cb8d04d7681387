"""``VISModule``: video instance segmentation (Deformable VisTR, SeqFormer).

Evaluation batches hold one whole video (batch 1): ``frames (1, T, 3, H, W)``, ``targets[0]`` (``masks (M, T, H, W)``,
``labels (M,)``) at the network input size, ``meta`` with the video id and sizes. The paper's ``infer(batch)``
returns :class:`~vidseg_common.tasks.instances.VideoInstances` at the **original video size** (use
:func:`~vidseg_common.tasks.resize.masks_to_original`), with ``valid`` marking the frames written as masks (the
others are ``null`` in the results JSON). This module brings the ground truth to the original size the same way,
scores with :class:`~vidseg_common.metrics.vis.VideoAP` (``<stage>/ap``, ``ap50``, ``ap75``, ``ar1``, ``ar10``),
and ``predict`` writes one YouTube-VIS results JSON ``<output_dir>/results.json`` (under DDP rank 0 merges the
ranks' items: the same file as a single process).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidseg_common.data.formats.youtube_vis import write_youtube_vis_results
from vidseg_common.errors import DataError
from vidseg_common.metrics.vis import VideoAP
from vidseg_common.tasks.base import TaskModule
from vidseg_common.tasks.instances import VideoInstances
from vidseg_common.tasks.resize import ids_to_original, meta_sizes

LOGGED_STATS = {"ap": "AP", "ap50": "AP50", "ap75": "AP75", "ar1": "AR1", "ar10": "AR10"}


class VISModule(TaskModule):
    """Task module of video instance segmentation.

    Args:
        mask_threshold: probability threshold of the predicted masks (0.5).
        overlay_max_instances: best-scoring predictions drawn in the validation overlay images.
        **kwargs: :class:`~vidseg_common.engine.module.VidSegModule` options.
    """

    def __init__(self, mask_threshold: float = 0.5, overlay_max_instances: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_threshold, self.overlay_max_instances = mask_threshold, overlay_max_instances
        self.val_ap = VideoAP()
        self._predictions: list[dict[str, Any]] = []

    def infer(self, batch: dict[str, Any]) -> VideoInstances:
        """The batch's one video → predicted sequences at the original video size."""
        raise NotImplementedError(f"{type(self).__name__} must implement infer(batch)")

    def sizes(self, batch: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """``(input_size, resized_size, original_size)`` of the batch's one video."""
        if batch["frames"].shape[0] != 1:
            raise DataError(f"VIS evaluation runs whole videos with batch size 1, got {batch['frames'].shape[0]}")
        input_size = (int(batch["frames"].shape[-2]), int(batch["frames"].shape[-1]))
        return (input_size, *meta_sizes(batch["meta"][0], input_size))

    def ground_truth(self, batch: dict[str, Any]) -> VideoInstances:
        """The batch's target at the original video size (crop the padding, nearest-neighbour resize)."""
        _, resized, original = self.sizes(batch)
        target = batch["targets"][0]
        masks = ids_to_original(target["masks"].bool(), resized, original)
        return VideoInstances(masks=masks, labels=target["labels"], valid=masks.flatten(2).any(2))

    def evaluate(self, batch: dict[str, Any]) -> dict[str, Any]:
        preds = self.infer(batch)
        scored = {"masks": preds.masks, "scores": preds.scores, "labels": preds.labels}
        self.val_ap.update(scored, self.ground_truth(batch).as_dict(), video_id=int(batch["meta"][0]["video_id"]))
        return {"instances": preds}

    def evaluation_metrics(self) -> dict[str, Tensor]:
        stats = self.val_ap.compute()
        self.val_ap.reset()
        return {name: stats[column].float() for name, column in LOGGED_STATS.items()}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Results-JSON items of the video (masks at the original size, ``None`` for frames not ``valid``)."""
        preds = self.infer(batch)
        video_id = int(batch["meta"][0]["video_id"])
        valid = preds.valid if preds.valid is not None else preds.masks.new_ones(preds.masks.shape[:2], dtype=bool)
        items = []
        for masks, keep, score, label in zip(preds.masks.cpu().numpy(), valid.tolist(), preds.scores.tolist(),
                                             preds.labels.tolist()):
            frames = [m if k else None for m, k in zip(masks, keep)]
            items.append({"video_id": video_id, "category_id": int(label), "score": float(score), "masks": frames})
        self._predictions.extend(items)
        return items

    def on_predict_epoch_end(self) -> None:
        """Write ``<output_dir>/results.json`` once: under DDP rank 0 gathers every rank's items (a video predicted
        twice because the sampler padded the last batch is kept once) and writes the same file a single process
        writes: items ordered by video id, each video's in prediction order."""
        items, self._predictions = self._predictions, []
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, items)
            if torch.distributed.get_rank() != 0:
                return
            seen: dict[int, int] = {}
            items = [item for rank, part in enumerate(gathered) for item in part
                     if seen.setdefault(item["video_id"], rank) == rank]
        items.sort(key=lambda item: item["video_id"])  # stable: a video's own order is kept
        write_youtube_vis_results(self.output_dir / "results.json", items)

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, Any]) -> np.ndarray:
        """First frame (its content, without padding) with the ``overlay_max_instances`` best-scoring predictions:
        ``(H, W, 3) uint8``, one colour per sequence, "index class score" captions."""
        from vidseg_common.viz import vis_prediction_overlay

        preds: VideoInstances = outputs["instances"]
        _, resized, _ = self.sizes(batch)
        masks = preds.masks[:, 0]
        if masks.shape[0] and tuple(masks.shape[-2:]) != resized:
            masks = F.interpolate(masks[:, None].float(), size=resized, mode="nearest")[:, 0].bool()
        return vis_prediction_overlay(batch["frames"][0, 0, :, : resized[0], : resized[1]], masks, preds.scores,
                                      preds.labels, self.overlay_max_instances)
