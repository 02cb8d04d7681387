"""Executed convolution FLOPs per module (query encoder Q, memory encoder M, decoder D), like SpVOS Table IV.

:class:`ConvFlopCounter` hooks every ``nn.Conv2d`` of the network: a dense conv adds ``2·C_in·kh·kw·C_out``
FLOPs per output position, a sparse layer adds what it really executed (computed positions only, its own
counter) and, separately, its gate's FLOPs. FLOPs are 2 per multiply-add. Only convolutions are counted
(no memory read, no interpolation), the same for the dense and the sparse models.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from vidseg_common.ops.sparse_conv_gates import SparseConvBase

PART_LABEL = {"key_encoder": "Q", "value_encoder": "M", "decoder": "D"}


class ConvFlopCounter:
    """Context manager counting executed conv FLOPs of ``net`` per part and per layer.

    Args:
        net: the network whose top-level children are ``key_encoder`` / ``value_encoder`` / ``decoder``.
        layers: restrict the per-layer table ``selected`` to these qualified names (e.g. the names that the
            sparse model sparsifies, to compare "the sparsified modules" of a dense and a sparse model).

    Attributes:
        by_part: ``{"Q"|"M"|"D": executed FLOPs}``; gate_by_part: gate FLOPs; dense_by_part: dense FLOPs.
        selected: executed FLOPs summed over ``layers``; selected_dense: their dense FLOPs.
    """

    def __init__(self, net: nn.Module, layers: set[str] | None = None) -> None:
        self.net, self.layers = net, layers
        self.handles: list = []
        self.by_part: dict[str, float] = defaultdict(float)
        self.gate_by_part: dict[str, float] = defaultdict(float)
        self.dense_by_part: dict[str, float] = defaultdict(float)
        self.selected = 0.0
        self.selected_dense = 0.0

    def __enter__(self) -> ConvFlopCounter:
        for name, module in self.net.named_modules():
            if isinstance(module, nn.Conv2d):
                self.handles.append(module.register_forward_pre_hook(self._pre))
                self.handles.append(module.register_forward_hook(self._make_hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    @staticmethod
    def _pre(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...]) -> None:
        if isinstance(module, SparseConvBase):
            module._flops_before = (module.executed_flops, module.gate_flops, module.total_dense_flops)

    def _make_hook(self, name: str):
        part = PART_LABEL.get(name.split(".", 1)[0], "other")

        def hook(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if isinstance(module, SparseConvBase):
                before = module._flops_before
                executed = module.executed_flops - before[0]
                gate = module.gate_flops - before[1]
                dense = module.total_dense_flops - before[2]
            else:
                dense = 2 * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1] \
                    * module.out_channels * out.shape[0] * out.shape[2] * out.shape[3]
                executed, gate = dense, 0
            self.by_part[part] += executed
            self.gate_by_part[part] += gate
            self.dense_by_part[part] += dense
            if self.layers is None or name in self.layers:
                self.selected += executed
                self.selected_dense += dense

        return hook


class EvaluationCost:
    """What one evaluation epoch cost: executed conv GFLOPs per frame of Q / M / D (Table IV) and the skip / reuse /
    compute split of the sparse layers' sparse-frame pixels (Fig. 5).

    Args:
        net: the :class:`~vidseg_spvos.model.SpVOSNet`.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.flops: dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        """Forget the counted FLOPs and the sparse layers' pixel statistics."""
        self.flops = defaultdict(float)
        for layer in self.net.sparse_layers.values():
            layer.reset_statistics()

    def add(self, counter: ConvFlopCounter, frames: int) -> None:
        """Add the FLOPs of ``counter`` (one video of ``frames`` frames)."""
        for part, value in counter.by_part.items():
            self.flops[part] += value
        self.flops["frames"] += frames

    def sparse_split(self) -> dict[str, float]:
        """Skip / reuse / compute fractions over all sparse layers' sparse-frame pixels since the last reset."""
        totals = {key: sum(layer.pixel_counts[key] for layer in self.net.sparse_layers.values())
                  for key in ("skip", "reuse", "compute")}
        count = sum(totals.values())
        return {k: (v / count if count else 0.0) for k, v in totals.items()}

    def summary(self) -> dict[str, float]:
        """``gflops_q|m|d`` per frame and, with sparse layers, ``skip|reuse|compute_fraction``."""
        frames = max(1.0, self.flops["frames"])
        out = {f"gflops_{part.lower()}": self.flops[part] / frames / 1e9 for part in ("Q", "M", "D")}
        if self.net.sparse_layers:
            out.update({f"{key}_fraction": value for key, value in self.sparse_split().items()})
        return out
