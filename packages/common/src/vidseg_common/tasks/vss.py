"""``VSSModule``: video semantic segmentation (STT).

Evaluation batches: ``frames (B, T+1, 3, H, W)`` (annotated frame last), ``label (B, H, W)`` (``ignore_index`` =
void) at the network input size, ``meta`` per item. The paper's ``infer(batch)`` returns the annotated frames'
class logits ``(B, K, H, W)`` at the input size. This module scores the argmax with
:class:`~vidseg_common.metrics.vss.SegmentationIoU` (one confusion matrix over the split: ``<stage>/miou`` and the
per-class ``<stage>/iou/<trainId>``), and ``predict`` writes ``<output_dir>/<sample>.png`` (trainIds, palette PNG)
at the original size as ETC's ``gen_video.py`` does: single scale, no flip, argmax of the logits cropped to the
content and bilinearly resized back when the frames were resized.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidseg_common.data.formats.png import write_index_png
from vidseg_common.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vidseg_common.errors import ConfigError
from vidseg_common.io import resolve_inside
from vidseg_common.metrics.vss import SegmentationIoU
from vidseg_common.tasks.base import TaskModule
from vidseg_common.tasks.resize import logits_to_original, meta_sizes

OFFICIAL_COLOURS = {19: "cityscapes", 11: "camvid"}
"""Label sets drawn in a dataset's official colours, by class count (Cityscapes trainIds, CamVid)."""


class VSSModule(TaskModule):
    """Task module of video semantic segmentation.

    Args:
        num_classes: 19 (Cityscapes) or 11 (CamVid).
        ignore_index: void label.
        **kwargs: :class:`~vidseg_common.engine.module.VidSegModule` options.
    """

    def __init__(self, num_classes: int = 19, ignore_index: int = 255, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ConfigError(f"model.num_classes must be >= 2, got {num_classes}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.val_iou = SegmentationIoU(num_classes, ignore_index=ignore_index)

    def infer(self, batch: dict[str, Any]) -> Tensor:
        """Class logits ``(B, K, H, W)`` of the batch's annotated frames at the network input size."""
        raise NotImplementedError(f"{type(self).__name__} must implement infer(batch)")

    memory_frames: int = 0
    """Previous frames a streaming model keeps in its cache (see :meth:`stream_step`)."""

    def stream_step(self, frame: Tensor, cache: list) -> Tensor:
        """Streaming inference, for models that have it: one frame ``(B, 3, H, W)`` and the cache of the previous
        frames (start with ``[]``; updated in place) → logits ``(B, K, H, W)``. ``benchmark`` then times streaming."""
        raise NotImplementedError(f"{type(self).__name__} has no streaming inference")

    def _streams(self) -> bool:
        return type(self).stream_step is not VSSModule.stream_step

    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """``frames (B, num_frames, 3, H, W)``; for a streaming model also a cache already holding
        :attr:`memory_frames` encoded frames, so every timed frame runs with a full memory (steady state)."""
        frames = torch.rand(batch_size, num_frames, 3, height, width, device=self.device)
        if not self._streams():
            return (frames,)
        cache: list = []
        for _ in range(self.memory_frames):
            self.stream_step(torch.rand(batch_size, 3, height, width, device=self.device), cache)
        return frames, cache

    def benchmark_forward(self, frames: Tensor, cache: list | None = None) -> Tensor:
        """A streaming model streams ``frames`` (each encoded once, a copy of ``cache`` as memory): frames/s is then
        the streaming fps, one new frame per output. Otherwise the clip forward."""
        if not self._streams():
            return self(frames)
        cache = list(cache or [])
        logits = frames.new_empty(0)
        for t in range(frames.shape[1]):
            logits = self.stream_step(frames[:, t], cache)
        return logits

    def evaluate(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        logits = self.infer(batch)
        pred = logits.argmax(1)
        self.val_iou.update(pred, batch["label"])
        return {"pred": pred, "logits": logits}

    def evaluation_metrics(self) -> dict[str, Tensor]:
        result = self.val_iou.compute()
        self.val_iou.reset()
        metrics = {"miou": result["mIoU"].float().nan_to_num(0.0)}
        for c, iou in enumerate(result["IoU"].tolist()):
            if iou == iou:  # classes present in GT or prediction
                metrics[f"iou/{c}"] = torch.tensor(float(iou))
        return metrics

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        """Write each annotated frame's prediction as ``<output_dir>/<sample>.png``; returns the written paths."""
        logits = self.infer(batch)
        input_size = (int(logits.shape[-2]), int(logits.shape[-1]))
        paths = []
        for logit, meta in zip(logits, batch["meta"]):
            resized, original = meta_sizes(meta, input_size)
            labels = logits_to_original(logit[None], input_size, resized, original)[0].argmax(0)
            path = resolve_inside(self.output_dir, f"{meta['sample']}.png", "prediction")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_index_png(path, labels.to(torch.uint8).cpu().numpy())
            paths.append(str(path))
        return paths

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, Tensor]) -> np.ndarray:
        """Annotated frame blended with the predicted classes, in the official colours of a 19-class (Cityscapes
        trainIds) or 11-class (CamVid) label set, else one colour per id: ``(H, W, 3) uint8``."""
        from vidseg_common.viz import overlay_classes, overlay_ids, to_uint8_image

        image = to_uint8_image(batch["frames"][0, -1], IMAGENET_MEAN, IMAGENET_STD)
        pred = outputs["pred"][0].cpu().numpy()
        dataset = OFFICIAL_COLOURS.get(self.num_classes)
        if dataset is not None:
            return overlay_classes(image, pred, dataset)
        return overlay_ids(image, pred % 254 + 1, outline=False)
