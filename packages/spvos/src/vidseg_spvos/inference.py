"""Whole-video inference (STCN ``inference_core*.py`` + SpVOS mixed sparse inference, docs/reference/vos.md §2.5).

* Memory: the annotated frames plus every frame with ``t % mem_every == 0`` (DAVIS 5, YouTube-VOS 4 in SpVOS);
  the values are encoded from the soft aggregated probabilities (hard masks on annotated objects).
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
    for t in range(num_frames):
        new = sorted(starts.get(t, []))
        is_memory = t % mem_every == 0 or bool(new)
        with net.dense(frame_is_dense(strategy, is_memory=is_memory, is_annotated=bool(new))):
            feats = net.encode_key(frames[t : t + 1])
            if objects:
                if decoder_k != len(objects):
                    net.reset_state(["decoder"])
                    decoder_k = len(objects)
                prob = _predict(net, feats, mem_keys, mem_values, first_mem, top_k)
            else:
                prob = frames.new_zeros(1, 0, *frames.shape[-2:])
            if new:
                gt = one_hot_objects(labels[t : t + 1], max(new))[:, [o - 1 for o in new]]
                prob = torch.cat([prob * (gt.sum(1, keepdim=True) < 0.5), gt], dim=1)
                first_mem += [len(mem_keys)] * len(new)
                objects += new
            if objects:
                ids = torch.tensor([0, *objects], device=frames.device)
                out[t] = ids[first_argmax(torch.softmax(aggregate(prob), dim=1)[0])]
            if is_memory and objects:
                if value_k != len(objects):
                    net.reset_state(["value_encoder"])
                    value_k = len(objects)
                mem_keys.append(feats["k16"])
                mem_values.append(net.encode_value(frames[t : t + 1], feats["f16"], prob)[0])
    return out


def _predict(net: SpVOSNet, feats: dict[str, torch.Tensor], mem_keys: list[torch.Tensor],
             mem_values: list[torch.Tensor], first_mem: list[int], top_k: int | None) -> torch.Tensor:
    """Per-object soft masks ``(1, K, H, W)``: each group of objects reads the memory frames since it appeared."""
    x16 = [None] * len(first_mem)
    for start in sorted(set(first_mem)):
        idx = [i for i, s in enumerate(first_mem) if s == start]
        keys = torch.stack(mem_keys[start:], dim=2)
        values = torch.stack([v[idx] for v in mem_values[start:]], dim=2)[None]
        read = net.read_memory(feats, keys, values, top_k)[0]
        for j, i in enumerate(idx):
            x16[i] = read[j]
    _, prob = net.decode(feats, torch.stack(x16)[None])
    return prob
