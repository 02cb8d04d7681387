"""``VOSModule``: semi-supervised video object segmentation (SSTVOS, SpVOS).

Evaluation batches hold one whole video (batch 1): ``frames (1, T, 3, H, W)``, ``masks (1, T, H, W)`` (ground
truth; the model reads frame 0 and each object's first annotation, ``meta["first_frame"]``), ``num_objects``.
The paper's ``infer(batch)`` returns the ids ``(T, H, W)`` at the network input size; this module crops the
padding (and undoes a resize) with ``meta``, scores the video with :class:`~vidseg_common.metrics.jandf.JandF`
(``<stage>/jf``, ``/j``, ``/f``) or, with ``eval_metric: youtube_vos``, with
:class:`~vidseg_common.metrics.ytvos.YouTubeVOSScore` (``<stage>/g``), and ``predict`` writes DAVIS-layout
palette PNGs ``<output_dir>/<video>/<frame>.png`` at the original size (atomically).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from vidseg_common.data.formats.davis import write_vos_masks
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.metrics.jandf import JandF
from vidseg_common.metrics.ytvos import YouTubeVOSScore
from vidseg_common.tasks.base import TaskModule
from vidseg_common.tasks.resize import ids_to_original, meta_sizes

EVAL_COLUMNS = {"davis": {"jf": "J&F-Mean", "j": "J-Mean", "f": "F-Mean"}, "youtube_vos": {"g": "G_proxy"}}


class VOSModule(TaskModule):
    """Task module of semi-supervised VOS.

    Args:
        eval_metric: ``davis`` (J&F) or ``youtube_vos`` (G proxy on the annotated frames).
        **kwargs: :class:`~vidseg_common.engine.module.VidSegModule` options.
    """

    def __init__(self, eval_metric: Literal["davis", "youtube_vos"] = "davis", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if eval_metric not in EVAL_COLUMNS:
            raise ConfigError(f"model.eval_metric must be 'davis' or 'youtube_vos', got {eval_metric!r}")
        self.eval_metric = eval_metric
        self.val_score = JandF() if eval_metric == "davis" else YouTubeVOSScore()

    def infer(self, batch: dict[str, Any]) -> Tensor:
        """Ids ``(T, H, W) long`` of the batch's one video at the network input size."""
        raise NotImplementedError(f"{type(self).__name__} must implement infer(batch)")

    def predict_video(self, batch: dict[str, Any]) -> Tensor:
        """:meth:`infer` at the original video size ``(T, H0, W0)``."""
        if batch["frames"].shape[0] != 1:
            raise DataError(f"VOS evaluation runs whole videos with batch size 1, got {batch['frames'].shape[0]}")
        ids = self.infer(batch)
        resized, original = meta_sizes(batch["meta"][0], tuple(batch["frames"].shape[-2:]))
        return ids_to_original(ids, resized, original)

    def evaluate(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        pred = self.predict_video(batch)
        meta = batch["meta"][0]
        resized, original = meta_sizes(meta, tuple(batch["frames"].shape[-2:]))
        target = ids_to_original(batch["masks"][0], resized, original)
        if self.eval_metric == "davis":
            self.val_score.update(pred.cpu(), target.cpu(), meta["video"])
        else:
            annotated = torch.as_tensor(meta.get("annotated", [True] * pred.shape[0]))
            self.val_score.update(pred.cpu(), target.cpu(), meta["video"], annotated=annotated)
        return {"pred": pred}

    def evaluation_metrics(self) -> dict[str, Tensor]:
        result = self.val_score.compute()
        self.val_score.reset()
        return {name: result[column].float().nan_to_num(0.0) for name, column in EVAL_COLUMNS[self.eval_metric].items()}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        """Write ``<output_dir>/<video>/<frame>.png`` (DAVIS palette) at the original size; returns the paths."""
        pred = self.predict_video(batch).to(torch.uint8).cpu().numpy()
        meta = batch["meta"][0]
        return write_vos_masks(self.output_dir, meta["video"], list(meta["frames"]), pred)

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, Tensor]) -> np.ndarray:
        """Last frame with its predicted objects (DAVIS palette, id numbers drawn): ``(H, W, 3) uint8``."""
        from vidseg_common.viz import vos_prediction_overlay

        return vos_prediction_overlay(batch["frames"][0, -1], outputs["pred"][-1])

    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """A random video and a first-frame mask with two objects (top-left, bottom-right): ``(frames, masks)``."""
        frames = torch.rand(batch_size, num_frames, 3, height, width, device=self.device)
        masks = torch.zeros(batch_size, num_frames, height, width, dtype=torch.long, device=self.device)
        masks[:, 0, : height // 2, : width // 2] = 1
        masks[:, 0, height // 2 :, width // 2 :] = 2
        return frames, masks
