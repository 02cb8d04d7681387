"""``TripleSparseConv2d``: the triple sparse convolution of SpVOS (Lin, Chen, Yu, TIP 2023, §III-C).

Per output position a gate picks one of three policies for frame ``t`` (Eq. 7–8):

* 0 **skip**: the output is 0;
* 1 **reuse**: the layer's previous-frame output ``F_{o,t−1}`` is copied;
* 2 **compute**: the convolution ``conv(F_{i,t})`` is evaluated.

The gate 𝒢 is a convolution with the layer's kernel size, stride, padding and dilation on
``concat(F_{i,t−1}, F_{i,t})`` (``2·C_in`` channels) → 3 logits with bias, followed by
``F.gumbel_softmax(hard=True)`` (Eq. 9, straight-through). This design is inferred (the code is not
public) and reproduces every "Params" entry of SpVOS Tables I–III (docs/reference/vos.md §2.6; tested).

Three execution paths, all giving Eq. 8's output:

* training (with or without autograd): the dense masked form ``M₂·conv(x) + M₁·F_{o,t−1}`` with the
  Gumbel gate, so gradients reach the gate through the straight-through mask; in ``eval()`` with autograd
  on: the argmax decisions, ``vidseg::sparse_conv2d`` at the computed positions and the reused ones copied;
* inference (``eval()`` and no autograd), :meth:`TripleSparseConv2d.sparse_inference`: the gate logits in
  a few large ops (:func:`~vidseg_common.ops.sparse_conv_gates.fold_gate_conv2d`), the decisions by
  elementwise comparisons (:func:`~vidseg_common.ops.sparse_conv_gates.triple_decisions`, ``argmax``'s
  ties), and work only where something is computed: no convolution at all when no position is computed,
  the reuse/skip map ``where(reuse, F_{o,t−1}, 0)`` built in one pass, and the computed positions written
  into it by one gathered GEMM (:func:`~vidseg_common.ops.sparse_conv2d.sparse_conv2d_into`); above
  ``dense_above`` of the positions, the dense convolution then the selection. Same values as the
  autograd path up to summation order (tested to 1e-5);
* the first frame of a video (no previous frame) and every frame inside :meth:`dense` (memory frames of
  mixed sparse processing, SpVOS §III-E): the plain convolution, which refreshes the state.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv2d import sparse_conv2d_into
from vidseg_common.ops.sparse_conv_gates import (
    SparseConvBase,
    fold_gate_conv2d,
    gate_conv2d,
    triple_decisions,
    triple_gumbel_gate,
)

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

    State dict keys: ``weight``, ``bias`` (as ``nn.Conv2d``), ``gate.weight``, ``gate.bias``.
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
        """``gate(concat(prev_x, x))`` → ``(B, 3, H_out, W_out)``.

        Computed by :func:`fold_gate_conv2d` at inference (``eval()`` and no autograd), by the
        differentiable :func:`gate_conv2d` otherwise (same values up to summation order).
        """
        if not self.training and not torch.is_grad_enabled():
            return fold_gate_conv2d([prev_x, x], self.gate)
        return gate_conv2d([prev_x, x], self.gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One frame ``x: (B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``; updates the per-video state."""
        if self.dense_mode or not self.has_state_for(x):
            out = self._conv_forward(x, self.weight, self.bias)
            self.record(None, out.shape[0] * out.shape[2] * out.shape[3], None)
            self.remember(x, out)
            return out
        if not self.training and not torch.is_grad_enabled():
            out = self.sparse_inference(x)
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
            out = torch.where((choice == REUSE)[:, None], prev_out, out)
        counts = gate.detach().sum(dim=(0, 2, 3)).tolist()
        self.record(
            {"skip": int(counts[SKIP]), "reuse": int(counts[REUSE]), "compute": int(counts[COMPUTE])},
            gate.shape[0] * gate.shape[2] * gate.shape[3],
            self.gate,
        )
        self.last_gate = gate
        self.remember(x, out)
        return out

    def sparse_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Triple-gated output of one sparse frame without autograd; records statistics and ``last_gate``.

        Args:
            x: ``(B, C_in, H, W)`` this frame's input (``prev_input`` / ``prev_output`` hold frame ``t−1``).

        Returns:
            ``(B, C_out, H_out, W_out)``: conv at "compute", ``F_{o,t−1}`` at "reuse", 0 at "skip" positions
            (a new tensor; the state is not updated, :meth:`forward` does that).
        """
        prev_out = self.prev_output
        compute, reuse = triple_decisions(self.gate_logits(self.prev_input, x))  # (B, H_out, W_out)
        n_compute, n_reuse = torch.stack([compute.sum(), reuse.sum()]).tolist()
        positions = compute.numel()
        if n_compute > self.dense_above * positions:  # dense kernel, then select
            dense = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
            zero = torch.zeros((), dtype=dense.dtype, device=dense.device)
            out = torch.where(compute[:, None], dense, torch.where(reuse[:, None], prev_out, zero))
        else:
            out = _reuse_or_zero(reuse, prev_out, n_reuse, positions)
            if n_compute:
                sparse_conv2d_into(x, self.weight, self.bias, compute, self.stride, self.padding, self.dilation, out)
        counts = {"skip": positions - n_compute - n_reuse, "reuse": n_reuse, "compute": n_compute}
        self.record(counts, positions, self.gate)
        self.last_gate = torch.stack([~(compute | reuse), reuse, compute], dim=1).to(x.dtype)
        return out


def _reuse_or_zero(reuse: torch.Tensor, prev_out: torch.Tensor, reused: int, positions: int) -> torch.Tensor:
    """``F_{o,t−1}`` where ``reuse`` (``(B, H_out, W_out)`` bool), 0 elsewhere: ``(B, C_out, H_out, W_out)``, a new tensor."""
    if reused == 0:
        return torch.zeros_like(prev_out)
    if reused == positions:
        return prev_out.clone()
    zero = torch.zeros((), dtype=prev_out.dtype, device=prev_out.device)
    return torch.where(reuse[:, None], prev_out, zero)
