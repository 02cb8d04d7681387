"""``VideoOutputs``: while ``predict`` runs on a user's video, draw each frame's prediction into an H.264 overlay
video ``<output_dir>/<video>_overlay.mp4`` and a contact sheet ``<output_dir>/<video>_sheet.png``.

:class:`~vidseg_common.data.datamodules.video.VideoDataModule` adds it to the Trainer. It reads what the task
module's ``predict_step`` returned (VOS / VSS: the PNG paths it wrote; VIS: the results items with masks at the
original size) and the batch's frames (de-normalised, padding cropped), so it draws exactly what was written, at
the size the model read (``max_side``). Frames are encoded as they come (:class:`~vidseg_common.viz.video.Mp4Writer`);
the sheet keeps ``sheet_frames`` of them. Under DDP each process sees only its share of a VSS video: the overlay
is written by single-process runs only.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from PIL import Image

from vidseg_common.data.formats.png import read_index_png
from vidseg_common.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vidseg_common.io import atomic_path
from vidseg_common.tasks.vss import OFFICIAL_COLOURS
from vidseg_common.viz import (
    contact_sheet,
    overlay_classes,
    overlay_ids,
    overlay_instances,
    sample_indices,
    to_uint8_image,
)
from vidseg_common.viz.video import Mp4Writer

log = logging.getLogger(__name__)




def _shrink(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``(H, W)`` (or ``(N, H, W)`` bool) to ``size``."""
    if ids.shape[-2:] == tuple(size):
        return ids
    if ids.ndim == 3:
        return np.stack([_shrink(m.astype(np.uint8), size).astype(bool) for m in ids]) if len(ids) else \
            np.zeros((0, *size), bool)
    return cv2.resize(ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


class VideoOutputs(Callback):
    """Write the overlay video and the contact sheet of a predicted video.

    Args:
        task: ``vos``, ``vis`` or ``vss``.
        video: the video's name (file stem).
        fps: overlay frame rate.
        num_batches: predict batches the video gives (to pick the sheet's frames).
        sheet_frames: frames on the contact sheet.
        max_instances: VIS: best-scoring predictions drawn per frame.
    """

    def __init__(self, task: str, video: str, fps: float, num_batches: int, sheet_frames: int = 8,
                 max_instances: int = 5) -> None:
        self.task, self.video, self.fps = task, video, fps
        self.num_batches, self.sheet_frames, self.max_instances = num_batches, sheet_frames, max_instances
        self.writer: Mp4Writer | None = None
        self.rendered: list[np.ndarray] = []
        self.count = 0

    def _frames(self, batch: dict[str, Any]) -> list[np.ndarray]:
        """The batch's frames as ``(h, w, 3) uint8`` without padding (VSS: the annotated, last one)."""
        rh, rw = (int(v) for v in batch["meta"][0]["resized_size"])
        frames = batch["frames"][0, -1:] if self.task == "vss" else batch["frames"][0]
        return [to_uint8_image(f, IMAGENET_MEAN, IMAGENET_STD)[:rh, :rw] for f in frames]

    def _render(self, pl_module: L.LightningModule, outputs: Any, batch: dict[str, Any]) -> list[np.ndarray]:
        images = self._frames(batch)
        size = images[0].shape[:2]
        if self.task == "vos":
            return [overlay_ids(image, _shrink(read_index_png(path), size), label_ids=True)
                    for image, path in zip(images, outputs)]
        if self.task == "vss":
            labels = _shrink(read_index_png(outputs[0]), size)
            dataset = OFFICIAL_COLOURS.get(int(getattr(pl_module, "num_classes", 0)))
            if dataset is not None:
                return [overlay_classes(images[0], labels, dataset)]
            return [overlay_ids(images[0], (labels.astype(np.int64) % 254 + 1).astype(np.uint8), outline=False)]
        best = sorted(outputs, key=lambda item: item["score"], reverse=True)[: self.max_instances][::-1]
        rendered = []
        for t, image in enumerate(images):
            shown = [(rank, item) for rank, item in enumerate(best) if item["masks"][t] is not None]
            masks = np.stack([_shrink(np.asarray(item["masks"][t], bool), size) for _, item in shown]) if shown \
                else np.zeros((0, *size), bool)
            texts = [f"{item['category_id']} {item['score']:.2f}" for _, item in shown]
            rendered.append(overlay_instances(image, masks, texts, color_ids=[len(best) - r for r, _ in shown]))
        return rendered

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                             batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.world_size > 1:
            return
        output_dir = pl_module.output_dir
        if self.writer is None:
            self.writer = Mp4Writer(output_dir / f"{self.video}_overlay.mp4", self.fps)
        keep = set(sample_indices(self.num_batches if self.task == "vss" else batch["frames"].shape[1],
                                  self.sheet_frames))
        for image in self._render(pl_module, outputs, batch):
            self.writer.write(image)
            if (batch_idx if self.task == "vss" else self.count) in keep:
                self.rendered.append(image)
            self.count += 1

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.writer is None:
            return
        self.writer.close()
        path = pl_module.output_dir / f"{self.video}_sheet.png"
        with atomic_path(path) as tmp:
            Image.fromarray(contact_sheet(self.rendered)).save(tmp, format="PNG")
        log.info("wrote %s and %s", self.writer.path, path)
        self.writer, self.rendered, self.count = None, [], 0

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
