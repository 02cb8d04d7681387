"""Overlays of model outputs (tensors) for the paper modules' ``render_overlay``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidseg_common.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vidseg_common.viz.overlay import overlay_ids, overlay_instances, to_uint8_image

#: Palette colours available to instances (ids 1..254 of :func:`~vidseg_common.viz.palette.instance_palette`).
NUM_INSTANCE_COLOURS = 254


def vis_prediction_overlay(
    frame: torch.Tensor,
    masks: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    max_instances: int = 5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """One frame with the ``max_instances`` best-scoring predicted instances: ``(H, W, 3) uint8``.

    Args:
        frame: ``(3, H, W)`` normalised frame (the model input, possibly padded).
        masks: ``(R, h, w)`` bool masks of that frame; resized (nearest) to ``(H, W)`` when their size differs
            (e.g. masks at the original video size, frame resized for the model).
        scores: ``(R,)`` instance scores.
        labels: ``(R,)`` class ids (captions read "slot class score").
        max_instances: instances drawn; the most confident is drawn last, on top.
        mean, std: the normalisation to undo.
    """
    image = to_uint8_image(frame, mean, std)
    best = scores.argsort(descending=True)[:max_instances]
    order = best.flip(0).tolist()
    if not order:
        return overlay_instances(image, np.zeros((0, *image.shape[:2]), dtype=bool))
    chosen = masks[order].float()[:, None]
    if tuple(chosen.shape[-2:]) != image.shape[:2]:
        chosen = F.interpolate(chosen, size=image.shape[:2], mode="nearest")
    texts = [f"{i} c{int(labels[i])} {float(scores[i]):.2f}" for i in order]
    colours = [i % NUM_INSTANCE_COLOURS + 1 for i in order]
    return overlay_instances(image, chosen[:, 0].bool().cpu().numpy(), texts, colours)


def vos_prediction_overlay(
    frame: torch.Tensor,
    ids: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """One frame with its predicted object ids (DAVIS palette, id numbers drawn): ``(H, W, 3) uint8``.

    Args:
        frame: ``(3, H', W')`` normalised frame, possibly padded (``H' ≥ H``, ``W' ≥ W``): cropped to ``ids``.
        ids: ``(H, W)`` object ids (0 = background).
        mean, std: the normalisation to undo.
    """
    height, width = ids.shape
    image = to_uint8_image(frame[:, :height, :width], mean, std)
    return overlay_ids(image, ids.cpu().numpy(), label_ids=True)
