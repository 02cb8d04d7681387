"""SpVOS training objective (Eq. 10–13): ``L = L_seg + γ·(Σ_k L_layer,k + β·L_global)``.

* ``L_seg``: STCN's bootstrapped cross-entropy (common :class:`BootstrappedCE`), summed over the predicted frames.
* ``L_layer,k = max(s_k − t_upper, 0)² + max(t_lower − s_k, 0)²`` with ``s_k`` the fraction of "compute"
  decisions of layer ``k`` (skip and reuse are free). The loss is **summed** over layers as SpVOS writes it
  (dynconv averages, docs/reference/vos.md §2.6).
* ``L_global = (Σ_k c_k·n_k / Σ_k c_k·N_k − t_s)²`` with ``c_k = kh·kw·C_in·C_out`` the cost per position,
  ``n_k`` the computed and ``N_k`` all output positions of layer ``k``.
* Bounds relaxation (dynconv, docs/reference/vos.md §2.7): ``p = step / (anneal_fraction·total_steps)``,
  ``progress = cos(clamp(p, 0, 1)·π/2)²``, ``t_upper = 1 − progress·(1 − t_s)``, ``t_lower = progress·t_s``:
  both bounds start at ``t_s`` and relax to [0, 1] after 33 % of training.
* Residual-sparse baseline (SpVOS §IV-B.3): "the global computation cost as the loss", no target and no
  layer term: ``L_sp = Σ_k c_k·n_k / Σ_k c_k·N_k``.

Gate tensors are the straight-through one-hot decisions kept by the sparse layers, so ``s_k`` has the soft
Gumbel gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv_gates import SparseConvBase

COMPUTE_CHANNEL = 2  # triple gate order: skip, reuse, compute


def relaxed_bounds(step: int, total_steps: int, target: float, anneal_fraction: float = 0.33) -> tuple[float, float]:
    """``(t_lower, t_upper)`` of the layer-wise loss at ``step`` (dynconv's cosine-squared relaxation)."""
    span = max(1e-9, anneal_fraction * max(1, total_steps))
    progress = math.cos(min(max(step / span, 0.0), 1.0) * math.pi / 2) ** 2
    return progress * target, 1.0 - progress * (1.0 - target)


def compute_fraction(gate: torch.Tensor) -> torch.Tensor:
    """Per-position "compute" indicator of a gate: ``(B, 3, H, W)`` triple or ``(B, 1, H, W)`` binary → ``(B, H, W)``."""
    return gate[:, COMPUTE_CHANNEL] if gate.shape[1] == 3 else gate[:, 0]


class SparsityLoss(nn.Module):
    """``Σ_k L_layer,k + β·L_global`` (or the residual baseline's global cost).

    Args:
        target: sparse target ``t_s`` (fraction of computed positions; SpVOS: 0.1).
        beta: weight β of the global term (SpVOS: 1).
        anneal_fraction: fraction of training over which the layer bounds relax (dynconv: 0.33).
        mode: ``target`` (triple / static gates) or ``cost`` (residual baseline: global cost, no target).
    """

    def __init__(self, target: float = 0.1, beta: float = 1.0, anneal_fraction: float = 0.33,
                 mode: str = "target") -> None:
        super().__init__()
        if not 0.0 <= target <= 1.0:
            raise ConfigError(f"model.sparse_target must lie in [0, 1], got {target}")
        if anneal_fraction <= 0:
            raise ConfigError(f"model.anneal_fraction must be > 0, got {anneal_fraction}")
        if mode not in ("target", "cost"):
            raise ConfigError(f"sparsity loss mode must be 'target' or 'cost', got {mode!r}")
        self.target, self.beta, self.anneal_fraction, self.mode = target, beta, anneal_fraction, mode

    def forward(self, gates: Mapping[str, Sequence[torch.Tensor]], layers: Mapping[str, SparseConvBase],
                step: int, total_steps: int) -> dict[str, torch.Tensor]:
        """Loss terms from the gates collected over the sparse frames of a batch.

        Args:
            gates: layer name → list of gate tensors (one per sparse frame it ran).
            layers: layer name → sparse layer (for ``c_k``).
            step, total_steps: optimizer step and run length (bounds relaxation).

        Returns:
            ``{"sparsity": L_sp, "layer": Σ L_layer, "global": L_global, "compute_ratio": executed/dense cost}``
            (zeros when no layer ran sparsely).
        """
        device = next((g[0].device for g in gates.values() if g), torch.device("cpu"))
        zero = torch.zeros((), device=device)
        if not any(gates.values()):
            return {"sparsity": zero, "layer": zero, "global": zero, "compute_ratio": zero}
        lower, upper = relaxed_bounds(step, total_steps, self.target, self.anneal_fraction)
        layer_loss, cost, total = zero, zero, zero
        for name, frame_gates in gates.items():
            if not frame_gates:
                continue
            conv = layers[name]
            c_k = conv.in_channels * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
            on = torch.cat([compute_fraction(g).flatten() for g in frame_gates])
            s_k = on.mean()
            layer_loss = layer_loss + (s_k - upper).clamp(min=0) ** 2 + (lower - s_k).clamp(min=0) ** 2
            cost = cost + c_k * on.sum()
            total = total + c_k * on.numel()
        ratio = cost / total
        if self.mode == "cost":
            return {"sparsity": ratio, "layer": zero, "global": ratio, "compute_ratio": ratio.detach()}
        global_loss = (ratio - self.target) ** 2
        return {"sparsity": layer_loss + self.beta * global_loss, "layer": layer_loss, "global": global_loss,
                "compute_ratio": ratio.detach()}
