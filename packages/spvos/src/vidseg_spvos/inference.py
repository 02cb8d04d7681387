"""Whole-video inference (STCN ``inference_core*.py`` + SpVOS mixed sparse inference, docs/reference/vos.md §2.5).

* Memory: the annotated frames plus every frame ``mem_every`` frames after the last memory frame (DAVIS 5,
  YouTube-VOS 4 in SpVOS): STCN's ``inference_core_yv.py`` rule, which is ``inference_core.py``'s ``t % mem_every
  == 0`` when frame 0 is the only annotated frame (DAVIS). The values are encoded from the soft aggregated
  probabilities; the output ids are their argmax over {background, objects} (STCN ``aggregate(..., keep_bg=True)``).
* Annotated frames: the given masks override the prediction (other objects are zeroed under them) and the result
  is aggregated once more, as STCN's ``interact``; this is also what the memory encodes (for DAVIS' frame 0 that is
  the ground truth up to 1e-7 clamping).
* Read: STCN's L2 affinity with top-k (20) over the memory of each object.
* Late objects (YouTube-VOS): an object first annotated at frame ``t`` is inserted there (its ground truth
  overrides the prediction, STCN ``inference_core_yv.py``) and reads only the memory frames from ``t`` on.
  The object count of the decoder / memory encoder batch then changes, so their sparse state is reset.
* Sparse processing: :func:`~vidseg_spvos.processing.frame_is_dense` decides per frame (memory frames dense in
  ``mixed``). The sparse layers are reset at the start of every video.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.sparse_conv_gates import first_argmax
from vidseg_spvos.memory import aggregate
from vidseg_spvos.model import SpVOSNet
from vidseg_spvos.processing import Strategy, frame_is_dense, one_hot_objects


@torch.no_grad()
def segment_video(
    net: SpVOSNet,
    frames: torch.Tensor,
    labels: torch.Tensor,
    first_frame: Mapping[int, int],
    strategy: Strategy = "mixed",
    mem_every: int = 5,
    top_k: int | None = 20,
    video: str = "video",
) -> torch.Tensor:
    """Segment one video.

    Args:
        net: the network (eval mode).
        frames: ``(T, 3, H, W)`` normalised frames (H, W multiples of 16).
        labels: ``(T, H, W)`` ids; only frame ``first_frame[o]`` is read for object ``o``.
        first_frame: ``{object id: frame index where its ground truth is given}``.
        strategy: sparse processing strategy.
        mem_every: memory period.
        top_k: memory top-k (``None``: dense softmax).
        video: name used in error messages.

    Returns:
        ``(T, H, W)`` int64 predicted ids (0 = background).
    """
    if mem_every < 1:
        raise ConfigError(f"model.mem_every must be ≥ 1, got {mem_every}")
    num_frames = frames.shape[0]
    starts: dict[int, list[int]] = {}
    for obj, t in first_frame.items():
        if not 0 <= int(t) < num_frames:
            raise DataError(f"{video}: object {obj} first annotated at frame {t}, outside 0..{num_frames - 1}")
        starts.setdefault(int(t), []).append(int(obj))
    net.reset_state()
    objects: list[int] = []  # ids in order of appearance
    first_mem: list[int] = []  # per object: index of its first memory frame
    mem_keys: list[torch.Tensor] = []
    mem_values: list[torch.Tensor] = []
    out = torch.zeros(frames.shape[0], *frames.shape[-2:], dtype=torch.long, device=frames.device)
    decoder_k = value_k = -1
    last_memory = None
    for t in range(num_frames):
        new = sorted(starts.get(t, []))
        is_memory = bool(new) or (last_memory is not None and t - last_memory >= mem_every)
        with net.dense(frame_is_dense(strategy, is_memory=is_memory, is_annotated=bool(new))):
            feats = net.encode_key(frames[t : t + 1])
            if objects:
                if decoder_k != len(objects):
                    net.reset_state(["decoder"])
                    decoder_k = len(objects)
                full = _predict(net, feats, mem_keys, mem_values, first_mem, top_k)
            else:
                full = frames.new_ones(1, 1, *frames.shape[-2:])
            if new:
                gt = one_hot_objects(labels[t : t + 1], max(new))[:, [o - 1 for o in new]].to(frames.dtype)
                prob = torch.cat([full[:, 1:] * (gt.sum(1, keepdim=True) < 0.5), gt], dim=1)
                full = torch.softmax(aggregate(prob), dim=1)
                first_mem += [len(mem_keys)] * len(new)
                objects += new
            prob = full[:, 1:]
            if objects:
                ids = torch.tensor([0, *objects], device=frames.device)
                out[t] = ids[first_argmax(full[0])]
            if is_memory and objects:
                last_memory = t
                if value_k != len(objects):
                    net.reset_state(["value_encoder"])
                    value_k = len(objects)
                mem_keys.append(feats["k16"])
                mem_values.append(net.encode_value(frames[t : t + 1], feats["f16"], prob)[0])
    return out


def _predict(net: SpVOSNet, feats: dict[str, torch.Tensor], mem_keys: list[torch.Tensor],
             mem_values: list[torch.Tensor], first_mem: list[int], top_k: int | None) -> torch.Tensor:
    """Probabilities ``(1, K+1, H, W)`` over {bg, objects}: each group of objects reads the memory since it appeared."""
    x16 = [None] * len(first_mem)
    for start in sorted(set(first_mem)):
        idx = [i for i, s in enumerate(first_mem) if s == start]
        keys = torch.stack(mem_keys[start:], dim=2)
        values = torch.stack([v[idx] for v in mem_values[start:]], dim=2)[None]
        read = net.read_memory(feats, keys, values, top_k)[0]
        for j, i in enumerate(idx):
            x16[i] = read[j]
    logits, _ = net.decode(feats, torch.stack(x16)[None])
    return torch.softmax(logits, dim=1)
