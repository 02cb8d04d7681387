"""``MLP``: the DETR-family multi-layer perceptron (box heads, SeqFormer's dynamic-head controller)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (none after the last).

    Parameter names (``layers.<i>.weight``) match DETR / Deformable DETR / VisTR / SeqFormer checkpoints.

    Args:
        input_dim: input features.
        hidden_dim: width of the hidden layers.
        output_dim: output features.
        num_layers: number of Linear layers (≥ 1).
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP needs at least one layer, got num_layers={num_layers}")
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, [*dims[1:], output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        """``x (..., input_dim)`` → ``(..., output_dim)``."""
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x
