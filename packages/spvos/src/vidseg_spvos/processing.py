"""Sparse processing strategies (SpVOS §III-E, Table II) and the 3-frame training forward (STCN, SpVOS §IV-B.1).

Strategies decide per frame whether every sparse layer runs densely:

* ``fully``: every frame sparse (a video's first frame is dense anyway: no previous frame);
* ``semi-mixed``: annotated frames dense, all others sparse (memory frames included);
* ``mixed`` (SpVOS): memory frames (annotated ones included) dense, the other frames sparse. The memory encoder
  then only ever sees dense frames, so sparsifying it (``M``) is rejected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

from vidseg_common.errors import ConfigError
from vidseg_spvos.model import SpVOSNet

Strategy = Literal["fully", "semi-mixed", "mixed"]
STRATEGIES = ("fully", "semi-mixed", "mixed")
SparseFrameBN = Literal["batch", "running"]
SPARSE_FRAME_BN = ("batch", "running")


@contextmanager
def running_batchnorm(net: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Normalise with the running statistics (and leave them untouched) inside the block.

    Used for the sparse frames of training with ``sparse_frame_bn="running"``: skipped (zero) and reused
    positions otherwise enter the batch statistics, and the running averages that the dense (memory) frames
    are normalised with at inference become a mix of dense and sparse frames. STCN, whose recipe SpVOS
    follows, keeps every BatchNorm in eval mode (docs/reference/vos.md §2.4), so in the paper the sparse frames never touch
    BN statistics either; this keeps that property for from-scratch runs whose BN statistics are trained.
    """
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    if not enabled:
        bns = []
    for bn in bns:
        bn.eval()
    try:
        yield
    finally:
        for bn in bns:
            bn.train()


def check_strategy(strategy: str, sparse_modules: list[str]) -> None:
    """Raise :class:`ConfigError` for an unknown strategy or ``M`` with ``mixed`` (paper §IV-D.1)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"model.strategy={strategy!r} is not one of {STRATEGIES}")
    if strategy == "mixed" and "M" in sparse_modules:
        raise ConfigError("model.sparse_modules: 'M' has no effect with strategy 'mixed' (the memory encoder only "
                          "sees memory frames, which run dense); use 'semi-mixed' or 'fully'")


def frame_is_dense(strategy: Strategy, is_memory: bool, is_annotated: bool) -> bool:
    """Whether a frame runs the non-sparse path under ``strategy``."""
    if strategy == "mixed":
        return is_memory or is_annotated
    if strategy == "semi-mixed":
        return is_annotated
    return False


def one_hot_objects(labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """``labels (B, H, W)`` ids → ``(B, K, H, W)`` float masks of ids 1..K (255 and ids > K are background)."""
    ids = torch.arange(1, num_objects + 1, device=labels.device)
    return (labels[:, None] == ids[None, :, None, None]).float()


def forward_clip(net: SpVOSNet, frames: torch.Tensor, first_labels: torch.Tensor, num_objects: torch.Tensor,
                 strategy: Strategy, sparse_frame_bn: SparseFrameBN = "batch") -> tuple[list[torch.Tensor], dict[str, list[torch.Tensor]]]:
    """STCN's training forward on a clip, frame by frame (the sparse layers carry state from frame to frame).

    Frame 0's memory comes from its ground truth; frame ``t ≥ 1`` is segmented from the memory of frames
    ``0..t−1``, and every frame but the last is encoded into memory with its predicted soft masks. The first
    ``T−1`` frames are the memory frames (SpVOS trains with frames 1–2 as memory, frame 3 sparse).

    Args:
        net: the network (its sparse state is reset here).
        frames: ``(B, T, 3, H, W)``.
        first_labels: ``(B, H, W)`` ids of frame 0 (0 bg, 1..K, 255 ignore).
        num_objects: ``(B,)`` objects per sample (padding objects are masked by STCN's selector).
        strategy: processing strategy.
        sparse_frame_bn: ``batch`` (BatchNorm as the module's mode says on every frame) or ``running`` (the
            sparse frames use and keep the running statistics, :func:`running_batchnorm`).

    Returns:
        ``logits`` of frames ``1..T−1`` (each ``(B, K+1, H, W)``, ``K = max(1, max num_objects)``) and the gate
        decisions of every sparse layer that ran sparsely (layer name → one tensor per frame).
    """
    num_frames = frames.shape[1]
    k = max(1, int(num_objects.max()))
    selector = (torch.arange(k, device=frames.device)[None] < num_objects[:, None]).float()
    masks = one_hot_objects(first_labels, k)
    net.reset_state()
    keys, values, outputs = [], [], []
    gates: dict[str, list[torch.Tensor]] = defaultdict(list)
    for t in range(num_frames):
        net.clear_gates()
        dense = frame_is_dense(strategy, is_memory=t < num_frames - 1, is_annotated=t == 0)
        sparse = not dense and t > 0 and bool(net.sparse_layers)
        with net.dense(dense), running_batchnorm(net, sparse and sparse_frame_bn == "running"):
            feats = net.encode_key(frames[:, t])
            if t > 0:
                logits, masks = net.segment(feats, torch.stack(keys, 2), torch.stack(values, 3), selector)
                outputs.append(logits)
            if t < num_frames - 1:
                keys.append(feats["k16"])
                values.append(net.encode_value(frames[:, t], feats["f16"], masks))
        for name, gate in net.gates().items():
            gates[name].append(gate)
    return outputs, dict(gates)
