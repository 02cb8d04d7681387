"""``SpVOSModule``: training and evaluation of SpVOS (and its STCN / static / residual baselines) on vidseg.

Batches come from ``VOSDataModule`` (``protocol: stcn``): training clips ``frames (B, 3, 3, H, W)`` with
``masks (B, 3, H, W)`` (0 bg, 1..K, 255 ignore) and ``num_objects (B,)``; evaluation gives whole videos
(batch 1). Loss: bootstrapped CE on frames 2–3 + γ·(Σ layer + β·global) sparsity loss (:mod:`.criterion`).
Validation: whole-video inference (:mod:`.inference`), DAVIS J&F (``val/jf``), executed conv GFLOPs per frame of
the query encoder / memory encoder / decoder (``val/gflops_q|m|d``, Table IV) and the skip / reuse / compute
split of the sparse layers (Fig. 5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR

from vidseg_common.data.formats.davis import write_vos_masks
from vidseg_common.engine.module import VidSegModule
from vidseg_common.errors import ConfigError
from vidseg_common.metrics.jandf import JandF
from vidseg_common.models.losses import BootstrappedCE
from vidseg_spvos.criterion import SparsityLoss
from vidseg_spvos.flops import ConvFlopCounter
from vidseg_spvos.inference import segment_video
from vidseg_spvos.model import SpVOSNet
from vidseg_spvos.processing import SPARSE_FRAME_BN, SparseFrameBN, Strategy, check_strategy, forward_clip
from vidseg_spvos.schedule import WarmupHoldCosine
from vidseg_spvos.sparsify import GateType


class SpVOSModule(VidSegModule):
    """SpVOS on STCN.

    Args:
        key_backbone: query-encoder ResNet (``resnet50``; ``resnet18`` for CPU runs).
        value_backbone: memory-encoder ResNet (``resnet18``).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        key_dim: ``C_k`` (64).
        value_dim: ``C_v`` (512).
        decoder_channels: decoder widths (STCN 512, 256, 256).
        sparse_modules: ``Q``, ``Q_all``, ``D``, ``D_all``, ``M`` (Tables II–III).
        gate: ``triple`` (SpVOS), ``static``, ``residual`` or ``none`` (non-sparse STCN).
        tau: Gumbel-softmax temperature (Table V).
        strategy: ``fully``, ``semi-mixed`` or ``mixed`` (Table II), in training and inference.
        sparse_target: ``t_s`` (0.1).
        gamma: weight of the sparsity loss (1).
        beta: weight of the global term (1).
        anneal_fraction: fraction of training over which the layer bounds relax (dynconv 0.33).
        dense_above: inference compute fraction above which a sparse layer runs its dense kernel.
        boot_start: bootstrapped-CE warm start iteration (STCN 20k).
        boot_end: iteration where the kept fraction reaches ``boot_top_p`` (STCN 70k).
        boot_top_p: final fraction of hardest pixels (0.15).
        mem_every: memory period at inference (DAVIS 5, YouTube-VOS 4).
        top_k: memory top-k at inference (STCN 20).
        cosine_start_step: when set, the lr follows SpVOS's warm-up → constant → cosine (from this step) schedule
            with ``scheduler.warmup_steps``, ``warmup_start_factor`` and ``min_lr_ratio``.
        sparse_frame_bn: BatchNorm on the sparse training frames: ``batch`` (as on every frame) or ``running``
            (normalised with, and not updating, the running statistics; see
            :func:`~vidseg_spvos.processing.running_batchnorm`).
        predict_dir: where ``predict`` writes ``<video>/<frame>.png`` (default ``<default_root_dir>/predictions``).
        **kwargs: optimizer / scheduler / bn_mode / bn_scope of :class:`VidSegModule`.
    """

    backbone_attr = "net"

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
        cosine_start_step: int | None = None,
        predict_dir: str | None = None,
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
        self.sparse_frame_bn = sparse_frame_bn
        self.net = SpVOSNet(key_backbone, value_backbone, pretrained, key_dim, value_dim, sparse_modules, gate, tau,
                            dense_above, decoder_channels=decoder_channels)
        self.strategy, self.gamma, self.mem_every, self.top_k = strategy, gamma, mem_every, top_k
        self.seg_loss = BootstrappedCE(boot_start, boot_end, boot_top_p)
        self.sparsity_loss = SparsityLoss(sparse_target, beta, anneal_fraction, "cost" if gate == "residual" else "target")
        self.cosine_start_step, self.predict_dir = cosine_start_step, predict_dir
        self.val_jf = JandF()
        self._flops: dict[str, float] = {}

    # ------------------------------------------------------------------ optimisation
    def total_steps(self) -> int:
        """Planned optimizer steps of the run (1 outside a trainer)."""
        return max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1

    def configure_optimizers(self) -> dict[str, Any]:
        config = super().configure_optimizers()
        if self.cosine_start_step is not None:
            sched = self.scheduler_config
            factor = WarmupHoldCosine(sched.warmup_steps, sched.warmup_start_factor, self.cosine_start_step,
                                      self.total_steps(), sched.min_lr_ratio)
            config["lr_scheduler"]["scheduler"] = LambdaLR(config["optimizer"], factor)
        return config

    # ------------------------------------------------------------------ training
    def forward(self, frames: torch.Tensor, first_labels: torch.Tensor, num_objects: torch.Tensor) -> list[torch.Tensor]:
        """Training forward: ``frames (B, T, 3, H, W)`` → logits of frames 1..T−1, each ``(B, K+1, H, W)``."""
        return forward_clip(self.net, frames, first_labels, num_objects, self.strategy, self.sparse_frame_bn)[0]

    def compute_loss(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        """Loss terms of one training batch (``loss`` = segmentation + γ·sparsity)."""
        masks = batch["masks"]
        logits, gates = forward_clip(self.net, batch["frames"], masks[:, 0], batch["num_objects"], self.strategy,
                                     self.sparse_frame_bn)
        seg = sum(self.seg_loss(out, masks[:, t + 1], step) for t, out in enumerate(logits))
        sparse = self.sparsity_loss(gates, self.net.sparse_layers, step, self.total_steps())
        return {"loss": seg + self.gamma * sparse["sparsity"], "seg": seg, **sparse}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        terms = self.compute_loss(batch, self.global_step)
        bsz = batch["frames"].shape[0]
        self.log("train/loss", terms["loss"], on_step=True, on_epoch=True, batch_size=bsz)
        for key in ("seg", "sparsity", "compute_ratio"):
            self.log(f"train/{key}", terms[key], on_step=True, on_epoch=False, batch_size=bsz)
        return terms["loss"]

    # ------------------------------------------------------------------ evaluation
    def infer(self, batch: dict[str, Any]) -> torch.Tensor:
        """Whole-video inference of a batch of one video → ``(T, h, w)`` ids at the original size (padding cropped)."""
        meta = batch["meta"][0]
        first = {int(k): int(v) for k, v in (meta.get("first_frame") or {}).items()}
        if not first:  # DAVIS: every object of the first annotation starts at frame 0
            first = {o: 0 for o in range(1, int(batch["num_objects"][0]) + 1)}
        with ConvFlopCounter(self.net) as counter:
            pred = segment_video(self.net, batch["frames"][0], batch["masks"][0], first, self.strategy,
                                 self.mem_every, self.top_k, str(meta["video"]))
        for part, value in counter.by_part.items():
            self._flops[part] = self._flops.get(part, 0.0) + value
        self._flops["frames"] = self._flops.get("frames", 0.0) + pred.shape[0]
        height, width = (int(v) for v in meta["size"])
        return pred[:, :height, :width]

    def on_validation_epoch_start(self) -> None:
        self._flops = {}
        for layer in self.net.sparse_layers.values():
            layer.reset_statistics()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        pred = self.infer(batch)
        height, width = pred.shape[-2:]
        self.val_jf.update(pred, batch["masks"][0, :, :height, :width], batch["meta"][0]["video"])
        return {"pred": pred}

    def sparse_split(self) -> dict[str, float]:
        """Skip / reuse / compute fractions over all sparse layers' sparse-frame pixels since the last reset."""
        totals = {"skip": 0, "reuse": 0, "compute": 0}
        for layer in self.net.sparse_layers.values():
            for key in totals:
                totals[key] += layer.pixel_counts[key]
        count = sum(totals.values())
        return {k: (v / count if count else 0.0) for k, v in totals.items()}

    def on_validation_epoch_end(self) -> None:
        result = self.val_jf.compute()
        self.log("val/jf", result["J&F-Mean"].float().nan_to_num(0.0), sync_dist=False)
        self.log("val/j", result["J-Mean"].float().nan_to_num(0.0), sync_dist=False)
        self.log("val/f", result["F-Mean"].float().nan_to_num(0.0), sync_dist=False)
        frames = max(1.0, self._flops.get("frames", 0.0))
        for part in ("Q", "M", "D"):
            self.log(f"val/gflops_{part.lower()}", self._flops.get(part, 0.0) / frames / 1e9, sync_dist=True)
        if self.net.sparse_layers:
            for key, value in self.sparse_split().items():
                self.log(f"val/{key}_fraction", value, sync_dist=True)
        self.val_jf.reset()

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        """Write ``<predict_dir>/<video>/<frame>.png`` (DAVIS palette PNGs at the original size, atomically).

        Returns:
            The written paths.
        """
        pred = self.infer(batch).to(torch.uint8).cpu().numpy()
        meta = batch["meta"][0]
        root = Path(self.predict_dir) if self.predict_dir else Path(self.trainer.default_root_dir) / "predictions"
        return write_vos_masks(root, meta["video"], list(meta["frames"]), pred)

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, torch.Tensor]) -> np.ndarray:
        """Last frame of the video with its predicted objects (DAVIS palette, id numbers drawn, via
        :func:`vidseg_common.viz.vos_prediction_overlay`): ``(H, W, 3) uint8``."""
        from vidseg_common.viz import vos_prediction_overlay

        return vos_prediction_overlay(batch["frames"][0, -1], outputs["pred"][-1])

    # ------------------------------------------------------------------ benchmarking
    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """``frames (1, T, 3, H, W)`` and first-frame ``labels (1, T, H, W)`` with one centred square object."""
        frames = torch.rand(1, num_frames, 3, height, width, device=self.device)
        labels = torch.zeros(1, num_frames, height, width, dtype=torch.long, device=self.device)
        labels[:, 0, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1
        return frames, labels

    def benchmark_forward(self, frames: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Whole-video inference of one clip (the timed computation of ``benchmark``)."""
        return segment_video(self.net, frames[0], labels[0], {1: 0}, self.strategy, self.mem_every, self.top_k)
