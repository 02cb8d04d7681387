"""``SpVOSModule``: SpVOS (and its STCN / static / residual baselines) on :class:`~vidseg_common.tasks.vos.VOSModule`.

Training clips (``protocol: stcn``): ``frames (B, 3, 3, H, W)``, ``masks (B, 3, H, W)`` (0 bg, 1..K, 255 ignore),
``num_objects (B,)``. Loss: bootstrapped CE on frames 2–3 + γ·(Σ layer + β·global) sparsity loss (:mod:`.criterion`).
Evaluation adds to the task's J&F the executed conv GFLOPs per frame of the query encoder / memory encoder / decoder
(``<stage>/gflops_q|m|d``, Table IV) and the skip / reuse / compute split of the sparse layers (Fig. 5).
"""

from __future__ import annotations

from typing import Any

import torch

from vidseg_common.errors import ConfigError
from vidseg_common.models.losses import BootstrappedCE
from vidseg_common.tasks.vos import VOSModule
from vidseg_spvos.criterion import SparsityLoss
from vidseg_spvos.flops import ConvFlopCounter, EvaluationCost
from vidseg_spvos.inference import segment_video
from vidseg_spvos.model import SpVOSNet
from vidseg_spvos.processing import SPARSE_FRAME_BN, SparseFrameBN, Strategy, check_strategy, forward_clip
from vidseg_spvos.sparsify import GateType
from vidseg_spvos.weights import RULES


class SpVOSModule(VOSModule):
    """SpVOS on STCN.

    Args:
        key_backbone: query-encoder ResNet (``resnet50``); value_backbone: memory-encoder ResNet (``resnet18``).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        key_dim: ``C_k`` (64); value_dim: ``C_v`` (512); decoder_channels: decoder widths (STCN 512, 256, 256).
        sparse_modules: ``Q``, ``Q_all``, ``D``, ``D_all``, ``M`` (Tables II–III).
        gate: ``triple`` (SpVOS), ``static``, ``residual`` or ``none`` (non-sparse STCN); tau: Gumbel temperature.
        strategy: ``fully``, ``semi-mixed`` or ``mixed`` (Table II), in training and inference.
        sparse_target: ``t_s`` (0.1); gamma: sparsity-loss weight (1); beta: weight of its global term (1).
        anneal_fraction: fraction of training over which the layer bounds relax (dynconv 0.33).
        dense_above: inference compute fraction above which a sparse layer runs its dense kernel.
        boot_start, boot_end, boot_top_p: bootstrapped CE (STCN: 20k, 70k, 0.15).
        mem_every: memory period at inference (DAVIS 5, YouTube-VOS 4); top_k: memory top-k (STCN 20).
        sparse_frame_bn: BatchNorm of the sparse training frames: ``batch`` or ``running``
            (:func:`~vidseg_spvos.processing.running_batchnorm`).
        **kwargs: :class:`~vidseg_common.tasks.vos.VOSModule` options (eval_metric, optimizer, scheduler, …).
    """

    backbone_attr = "net"
    weight_rules = RULES  # released STCN weights (stcn.pth), vidseg_spvos.weights

    def __init__(
        self,
        key_backbone: str = "resnet50",
        value_backbone: str = "resnet18",
        pretrained: bool | str = False,
        key_dim: int = 64,
        value_dim: int = 512,
        decoder_channels: tuple[int, int, int] = (512, 256, 256),
        sparse_modules: list[str] | None = None,
        gate: GateType = "triple",
        tau: float = 1.0,
        strategy: Strategy = "mixed",
        sparse_target: float = 0.1,
        gamma: float = 1.0,
        beta: float = 1.0,
        anneal_fraction: float = 0.33,
        dense_above: float = 0.25,
        boot_start: int = 20_000,
        boot_end: int = 70_000,
        boot_top_p: float = 0.15,
        mem_every: int = 5,
        top_k: int | None = 20,
        sparse_frame_bn: SparseFrameBN = "batch",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        sparse_modules = ["Q", "D"] if sparse_modules is None else list(sparse_modules)
        check_strategy(strategy, sparse_modules)
        if mem_every < 1 or (top_k is not None and top_k < 1):
            raise ConfigError(f"model.mem_every and model.top_k must be ≥ 1, got {mem_every}, {top_k}")
        if len(decoder_channels) != 3 or min(decoder_channels) < 1:
            raise ConfigError(f"model.decoder_channels must be 3 positive widths, got {decoder_channels}")
        if sparse_frame_bn not in SPARSE_FRAME_BN:
            raise ConfigError(f"model.sparse_frame_bn={sparse_frame_bn!r} is not one of {SPARSE_FRAME_BN}")
        self.net = SpVOSNet(key_backbone, value_backbone, pretrained, key_dim, value_dim, sparse_modules, gate, tau,
                            dense_above, decoder_channels=decoder_channels)
        self.strategy, self.gamma, self.mem_every, self.top_k = strategy, gamma, mem_every, top_k
        self.sparse_frame_bn = sparse_frame_bn
        self.seg_loss = BootstrappedCE(boot_start, boot_end, boot_top_p)
        self.sparsity_loss = SparsityLoss(sparse_target, beta, anneal_fraction, "cost" if gate == "residual" else "target")
        self.cost = EvaluationCost(self.net)

    def forward(self, frames: torch.Tensor, first_labels: torch.Tensor, num_objects: torch.Tensor) -> list[torch.Tensor]:
        """Training forward: ``frames (B, T, 3, H, W)`` → logits of frames 1..T−1, each ``(B, K+1, H, W)``."""
        return forward_clip(self.net, frames, first_labels, num_objects, self.strategy, self.sparse_frame_bn)[0]

    def compute_loss(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        """Loss terms of one training batch (``loss`` = segmentation + γ·sparsity)."""
        logits, gates = forward_clip(self.net, batch["frames"], batch["masks"][:, 0], batch["num_objects"],
                                     self.strategy, self.sparse_frame_bn)
        seg = sum(self.seg_loss(out, batch["masks"][:, t + 1], step) for t, out in enumerate(logits))
        sparse = self.sparsity_loss(gates, self.net.sparse_layers, step, self.total_steps)
        return {"loss": seg + self.gamma * sparse["sparsity"], "seg": seg, **sparse}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        terms = self.compute_loss(batch, self.global_step)
        logged = ("loss", "seg", "sparsity", "compute_ratio")
        return self.log_losses({key: terms[key] for key in logged}, batch["frames"].shape[0])

    def infer(self, batch: dict[str, Any]) -> torch.Tensor:
        """Whole-video inference (memory every ``mem_every`` frames, top-k readout), counting executed conv FLOPs."""
        meta = batch["meta"][0]
        first = {int(k): int(v) for k, v in (meta.get("first_frame") or {}).items()}
        first = first or {o: 0 for o in range(1, int(batch["num_objects"][0]) + 1)}  # DAVIS: all at frame 0
        with ConvFlopCounter(self.net) as counter:
            pred = segment_video(self.net, batch["frames"][0], batch["masks"][0], first, self.strategy,
                                 self.mem_every, self.top_k, str(meta["video"]))
        self.cost.add(counter, pred.shape[0])
        return pred

    def start_evaluation(self) -> None:
        self.cost.reset()

    def end_evaluation(self) -> None:
        for key, value in self.cost.summary().items():
            self.log(f"{self.stage}/{key}", value, sync_dist=True)

    def benchmark_forward(self, frames: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Whole-video inference of the first clip (the timed computation of ``benchmark``)."""
        first = {o: 0 for o in range(1, int(labels[0, 0].max()) + 1)}
        return segment_video(self.net, frames[0], labels[0], first, self.strategy, self.mem_every, self.top_k)
