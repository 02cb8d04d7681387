"""``TripleSparseConv2d``: the triple sparse convolution of SpVOS (Lin, Chen, Yu, TIP 2023, §III-C).

Per output position a gate picks one of three policies for frame ``t`` (Eq. 7–8):

* 0 **skip**: the output is 0;
* 1 **reuse**: the layer's previous-frame output ``F_{o,t−1}`` is copied;
* 2 **compute**: the convolution ``conv(F_{i,t})`` is evaluated.

The gate 𝒢 is a convolution with the layer's kernel size, stride, padding and dilation on
``concat(F_{i,t−1}, F_{i,t})`` (``2·C_in`` channels) → 3 logits with bias, followed by
``F.gumbel_softmax(hard=True)`` (Eq. 9, straight-through). This design is inferred (the code is not
public) and reproduces every "Params" entry of SpVOS Tables I–III (vos.md §2.6; tested).

Training runs the dense masked form ``M₂·conv(x) + M₁·F_{o,t−1}`` so gradients reach the gate
through the straight-through mask; inference gathers only the computed positions
(``vidseg::sparse_conv2d``) and copies the reused ones. The first frame of a video (no previous
frame) and every frame inside :meth:`dense` (memory frames of mixed sparse processing, SpVOS §III-E)
run the plain convolution and refresh the state.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv_gates import SparseConvBase, gate_conv2d, triple_gumbel_gate

__all__ = ["TripleSparseConv2d"]

SKIP, REUSE, COMPUTE = 0, 1, 2


class TripleSparseConv2d(SparseConvBase):
    """Drop-in ``nn.Conv2d`` with the SpVOS triple gate.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
            device, dtype: as ``nn.Conv2d`` (``groups=1``, integer padding, zero padding only).
        tau: Gumbel-softmax temperature τ (SpVOS: 1; Table V ablates 0.01–100).
        dense_above: see :class:`SparseConvBase` (inference only).

    Shapes:
        ``x: (B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``. After a sparse frame ``last_gate``
        holds the ``(B, 3, H_out, W_out)`` one-hot decisions (straight-through in training), for the
        sparsity loss (``s_k = last_gate[:, 2].mean()``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        tau: float = 1.0,
        dense_above: float = 0.25,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
            device=device, dtype=dtype, dense_above=dense_above,
        )
        if tau <= 0:
            raise ConfigError(f"TripleSparseConv2d: tau must be > 0, got {tau}")
        self.tau = tau
        self.gate = nn.Conv2d(
            2 * in_channels, 3, self.kernel_size, self.stride, self.padding, self.dilation, bias=True,
            device=device, dtype=dtype,
        )
        self.last_gate: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}"

    def gate_logits(self, prev_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``gate(concat(prev_x, x))`` → ``(B, 3, H_out, W_out)`` (computed by :func:`gate_conv2d`)."""
        return gate_conv2d([prev_x, x], self.gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One frame ``x: (B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``; updates the per-video state."""
        if self.dense_mode or not self.has_state_for(x):
            out = self._conv_forward(x, self.weight, self.bias)
            self.record(None, out.shape[0] * out.shape[2] * out.shape[3], None)
            self.remember(x, out)
            return out
        prev_out = self.prev_output
        gate = triple_gumbel_gate(self.gate_logits(self.prev_input, x), self.tau, noise=self.training)
        if self.training:
            out = gate[:, COMPUTE : COMPUTE + 1] * self._conv_forward(x, self.weight, self.bias)
            out = out + gate[:, REUSE : REUSE + 1] * prev_out
        else:
            choice = gate.argmax(1)
            out = self.masked_conv(x, choice == COMPUTE)
            reuse = (choice == REUSE)[:, None]
            # in place when nothing records gradients (saves a full-size allocation per frame)
            out = torch.where(reuse, prev_out, out, out=out) if not torch.is_grad_enabled() else torch.where(reuse, prev_out, out)
        counts = gate.detach().sum(dim=(0, 2, 3)).tolist()
        self.record(
            {"skip": int(counts[SKIP]), "reuse": int(counts[REUSE]), "compute": int(counts[COMPUTE])},
            gate.shape[0] * gate.shape[2] * gate.shape[3],
            self.gate,
        )
        self.last_gate = gate
        self.remember(x, out)
        return out
