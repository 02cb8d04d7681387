"""Whole-video inference: clips of the trained length, stitching, and VisTR's post-processing (docs/reference/vis.md §2.6).

VisTR feeds each YouTube-VIS-2019 video as one 36-frame clip (shorter videos repeated cyclically, outputs
cut back to the video length). Longer videos (YTVIS-2021, or any video longer than the trained T) need a
stitching rule the papers do not give; ours (recorded choice):

- windows of T frames starting at ``0, T−1, 2(T−1), …`` (one frame of overlap), the last one aligned to the
  video end (more overlap); a video with ``L ≤ T`` frames is one window of the cyclically repeated frames;
- the N instance slots of each window are linked to the slots of the previous one by Hungarian matching on
  the soft-mask IoU over the overlapping frames (``cost = −IoU``), so each slot becomes one track; overlapping
  frames keep the earlier window's outputs;
- class probabilities are then aggregated over the whole track exactly as VisTR does for one clip:
  ``score = mean_t max_c p``, ``category = mode_t argmax_c p`` (lowest id on ties, as ``np.bincount``);
  a frame whose max probability is below 0.001 has no segmentation; slots whose mask is empty in every frame
  are dropped — tested on the masks before the 0.001 rule, as VisTR's ``inference.py`` does (a slot whose only
  foreground lies in such frames is kept, with no segmentation in any frame); masks are ``sigmoid > 0.5`` of the
  stride-4 logits upsampled (bilinear) straight to the original size when the input is unpadded, as VisTR's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from vidseg_common.models.matcher import hungarian_match
from vidseg_common.tasks.instances import VideoInstances
from vidseg_common.tasks.resize import masks_to_original


def clip_windows(length: int, clip_len: int) -> list[list[int]]:
    """Frame indices of each window (see module docstring); every window has ``clip_len`` entries."""
    if length <= clip_len:
        return [[i % length for i in range(clip_len)]]
    starts = list(range(0, length - clip_len, clip_len - 1)) if clip_len > 1 else list(range(length))
    if not starts or starts[-1] != length - clip_len:
        starts.append(length - clip_len)
    return [list(range(s, s + clip_len)) for s in starts]


def _soft_iou(a: Tensor, b: Tensor) -> Tensor:
    """``(N, F, h, w)`` × ``(N, F, h, w)`` probabilities → ``(N, N)`` soft IoU over the F frames."""
    a, b = a.flatten(1), b.flatten(1)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    return inter / union.clamp(min=1e-6)


@torch.no_grad()
def infer_video(
    forward: Callable[[Tensor], dict], frames: Tensor, clip_len: int, num_instances: int
) -> tuple[Tensor, Tensor]:
    """Run the model over a whole video.

    Args:
        forward: the model, ``(1, clip_len, 3, H, W)`` → outputs dict (frame-major queries).
        frames: ``(L, 3, H, W)`` one video.
        clip_len: T the model was built for.
        num_instances: N slots per frame.

    Returns:
        ``probs (L, N, K+1)`` softmax class probabilities and ``mask_logits (L, N, H/4, W/4)``, slot-aligned
        across windows.
    """
    length = frames.shape[0]
    n = num_instances
    probs: list[Tensor | None] = [None] * length
    masks: list[Tensor | None] = [None] * length
    for window in clip_windows(length, clip_len):
        out = forward(frames[window][None])
        p = out["pred_logits"][0].softmax(-1).view(clip_len, n, -1)
        m = out["pred_masks"][0].view(clip_len, n, *out["pred_masks"].shape[-2:])
        seen = [j for j, t in enumerate(window) if masks[t] is not None and j < length]
        if seen:
            prev = torch.stack([masks[window[j]] for j in seen], 1).sigmoid()  # (N, F, h, w)
            cur = m[seen].transpose(0, 1).sigmoid()
            prev_idx, cur_idx = hungarian_match(-_soft_iou(prev, cur))
            order = torch.empty(n, dtype=torch.long, device=m.device)
            order[prev_idx] = cur_idx  # slot s of the track ← slot order[s] of this window
            p, m = p[:, order], m[:, order]
        for j, t in enumerate(window):
            if j < length and masks[t] is None:
                probs[t], masks[t] = p[j], m[j]
    return torch.stack(probs), torch.stack(masks)  # type: ignore[arg-type]


def postprocess(
    probs: Tensor, mask_logits: Tensor, size: tuple[int, int], mask_threshold: float = 0.5, min_frame_prob: float = 0.001,
    resized_size: tuple[int, int] | None = None, original_size: tuple[int, int] | None = None,
) -> VideoInstances:
    """VisTR's per-slot results of one video.

    Args:
        probs: ``(L, N, K+1)`` class probabilities (last = no-object, dropped).
        mask_logits: ``(L, N, h, w)``.
        size: ``(H, W)`` of the network input. Unpadded input (``resized_size == size``, VisTR's case): the logits
            are upsampled straight to ``original_size`` (bilinear), as VisTR's ``inference.py``; padded input: upsampled
            to ``size``, cropped to ``resized_size`` and resized to ``original_size`` (bilinear, SeqFormer's rule),
            before ``sigmoid > mask_threshold``.
        mask_threshold: 0.5.
        min_frame_prob: frames whose max class probability is below this get an empty mask (``None`` in JSON).
        resized_size: content ``(h, w)`` before padding (default ``size``).
        original_size: ``(H0, W0)`` of the video (default ``resized_size``).

    Returns:
        The ``R ≤ N`` kept slots: ``masks (R, L, H0, W0) bool``, ``scores (R,)``, ``labels (R,)``, ``valid (R, L)``
        (frames with a non-empty mask).
    """
    resized = tuple(size) if resized_size is None else tuple(resized_size)
    original = resized if original_size is None else tuple(original_size)
    p = probs[..., :-1]  # (L, N, K)
    if resized == tuple(size) and mask_logits.shape[0] and mask_logits.shape[1]:  # one bilinear step (VisTR)
        logits = F.interpolate(mask_logits.transpose(0, 1), size=original, mode="bilinear", align_corners=False)
        masks = logits.sigmoid() > mask_threshold  # (N, L, H0, W0)
    else:
        masks = masks_to_original(mask_logits.transpose(0, 1), size, resized, original, mask_threshold)
    max_p, arg_p = p.max(-1)  # (L, N)
    keep = masks.flatten(1).any(1)  # before the min_frame_prob rule, as VisTR's inference.py
    masks &= (max_p >= min_frame_prob).T[:, :, None, None]
    scores = max_p.mean(0)
    num_classes = p.shape[-1]
    counts = F.one_hot(arg_p.T, num_classes).sum(1)  # (N, K)
    labels = counts.argmax(1)  # first maximum = lowest id, as np.bincount(...).argmax()
    return VideoInstances(masks=masks[keep], labels=labels[keep], scores=scores[keep], valid=masks[keep].flatten(2).any(2))
