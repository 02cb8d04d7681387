"""Gates and the shared base of the sparse convolution layers (SpVOS triple, dynconv static, skip-conv residual).

Gate decisions are hard in the forward pass and carry the soft probabilities' gradient backward
(straight-through, Bengio et al. 2013), as SpVOS §III-C.2, dynconv and skip-convolutions do.

At inference no Gumbel noise is drawn: the decision is the argmax of the gate logits (triple; computed
without ``aten::argmax`` by :func:`triple_decisions`, same ties) or ``logit >= 0`` (binary). SpVOS does not say what its gate does at test time; dynconv (whose
sparsity schedule SpVOS reuses, docs/reference/vos.md §2.7) drops the noise at inference, and a deterministic
segmentation of a given video is what the evaluation protocol needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv2d import sparse_conv2d

__all__ = [
    "SparseConvBase",
    "binary_gumbel_gate",
    "first_argmax",
    "fold_gate_conv2d",
    "gate_conv2d",
    "triple_decisions",
    "triple_gumbel_gate",
]


def gate_conv2d(
    inputs: list[torch.Tensor],
    gate: nn.Conv2d,
) -> torch.Tensor:
    """``gate(concat(inputs, dim=1))`` for a gate with few output channels, without the concatenation.

    oneDNN runs convolutions with so few output channels far below its GEMM speed on CPU (see
    ``benchmarks/ops_sparse_conv.py``). Convolution is linear in its input channels and in its taps, so
    every tap's 1×1 projection of every input is one GEMM
    ``(kh·kw·C_out, C_i) @ (C_i, H·W)``, the projections of the inputs are summed, and the ``kh·kw``
    shifted windows of the small ``C_out``-channel result are added. Same values up to summation order;
    differentiable.

    Args:
        inputs: tensors ``(B, C_i, H, W)`` whose channels concatenate to ``gate.in_channels``.
        gate: the ``nn.Conv2d`` (zero padding, groups 1) whose weight and bias are used.

    Returns:
        ``(B, gate.out_channels, H_out, W_out)``.
    """
    bsz, _, h, w = inputs[0].shape
    c_out, _, kh, kw = gate.weight.shape
    (sy, sx), (py, px), (dy, dx) = gate.stride, gate.padding, gate.dilation
    h_out = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    w_out = (w + 2 * px - dx * (kw - 1) - 1) // sx + 1
    weights = gate.weight.split([t.shape[1] for t in inputs], dim=1)
    proj = None
    for x, weight in zip(inputs, weights):
        taps = weight.permute(2, 3, 0, 1).reshape(kh * kw * c_out, x.shape[1])
        term = taps @ x.reshape(bsz, x.shape[1], h * w)
        proj = term if proj is None else proj + term
    proj = F.pad(proj.view(bsz, kh, kw, c_out, h, w), (px, px, py, py))
    out = gate.bias.view(1, -1, 1, 1) if gate.bias is not None else None
    for ky in range(kh):
        for kx in range(kw):
            rows = slice(ky * dy, ky * dy + sy * (h_out - 1) + 1, sy)
            cols = slice(kx * dx, kx * dx + sx * (w_out - 1) + 1, sx)
            tap = proj[:, ky, kx, :, rows, cols]
            out = tap if out is None else out + tap
    return out


def fold_gate_conv2d(inputs: list[torch.Tensor], gate: nn.Conv2d) -> torch.Tensor:
    """:func:`gate_conv2d` in a few large ops for stride-1, dilation-1 gates (inference form).

    The ``kh·kw`` tap projections of every input are one batched GEMM per input (the last input's is the
    ``matmul``, the earlier ones are added by ``baddbmm``) and their shifted sum is one ``F.fold`` (col2im)
    with the kernel flipped: the tap ``(ky, kx)`` of source pixel ``s`` lands on output ``s − k + p``, i.e.
    fold's ``s + k' − p'`` with ``k' = kh−1−ky`` and ``p' = kh−1−p``. Same values as ``gate(concat(inputs))``
    up to summation order. Other strides or dilations fall back to :func:`gate_conv2d`.

    Args:
        inputs: tensors ``(B, C_i, H, W)`` whose channels concatenate to ``gate.in_channels``.
        gate: the ``nn.Conv2d`` (zero padding, groups 1) whose weight and bias are used.

    Returns:
        ``(B, gate.out_channels, H_out, W_out)``.
    """
    if gate.stride != (1, 1) or gate.dilation != (1, 1):
        return gate_conv2d(inputs, gate)
    bsz, _, h, w = inputs[0].shape
    c_out, c_total, kh, kw = gate.weight.shape
    rows = gate.weight.flip((2, 3)).permute(0, 2, 3, 1).reshape(c_out * kh * kw, c_total)
    starts = [0]
    for x in inputs:
        starts.append(starts[-1] + x.shape[1])
    last = inputs[-1]
    proj = rows[:, starts[-2] :] @ last.reshape(bsz, last.shape[1], h * w)
    for i, x in enumerate(inputs[:-1]):
        proj = torch.baddbmm(proj, rows[:, starts[i] : starts[i + 1]].expand(bsz, -1, -1), x.reshape(bsz, x.shape[1], h * w))
    (py, px) = gate.padding
    h_out, w_out = h + 2 * py - kh + 1, w + 2 * px - kw + 1
    if (kh, kw) != (1, 1):
        proj = F.fold(proj, (h_out, w_out), (kh, kw), padding=(kh - 1 - py, kw - 1 - px))
    logits = proj.view(bsz, c_out, h_out, w_out)
    return logits + gate.bias.view(1, -1, 1, 1) if gate.bias is not None else logits


def triple_decisions(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmax`` of the {skip, reuse, compute} gate logits as two masks, with ``argmax``'s tie rule (first wins).

    Two elementwise comparisons of the 3 logit planes instead of ``aten::argmax`` over a 3-long strided
    dimension (slow on CPU).

    Args:
        logits: ``(B, 3, H, W)``.

    Returns:
        ``compute, reuse``: ``(B, H, W)`` bool (skip = neither).
    """
    skip, reuse, compute = logits.unbind(1)
    is_compute = (compute > skip) & (compute > reuse)
    return is_compute, (reuse > skip) & ~is_compute


def first_argmax(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(0)`` for a short leading dim (a few object channels) by elementwise running maxima.

    ``aten::argmax`` over a short outer dim is slow on CPU; ties go to the first index as in ``argmax``.

    Args:
        x: ``(C, ...)``.

    Returns:
        ``(...)`` int64 indices.
    """
    best, index = x[0], torch.zeros(x.shape[1:], dtype=torch.long, device=x.device)
    for c in range(1, x.shape[0]):
        better = x[c] > best
        index.masked_fill_(better, c)
        best = torch.maximum(best, x[c])
    return index


def triple_gumbel_gate(logits: torch.Tensor, tau: float, noise: bool) -> torch.Tensor:
    """One-hot {skip, reuse, compute} decisions from 3 logits per position.

    Args:
        logits: ``(B, 3, H, W)`` gate logits ``P`` (channel 0 skip, 1 reuse, 2 compute).
        tau: Gumbel-softmax temperature τ (SpVOS Eq. 9).
        noise: draw Gumbel noise (training). Without it the decision is ``argmax P``.

    Returns:
        ``(B, 3, H, W)`` hard one-hot mask; with ``noise`` its gradient is that of the soft
        ``softmax((log softmax(P) + G) / τ)`` (``F.gumbel_softmax(hard=True)``; ``log softmax`` only
        shifts the logits per position, which the outer softmax ignores).
    """
    if noise:
        return F.gumbel_softmax(logits, tau=tau, hard=True, dim=1)
    return F.one_hot(logits.argmax(1), 3).permute(0, 3, 1, 2).to(logits.dtype)


def binary_gumbel_gate(logits: torch.Tensor, tau: float, noise: bool) -> torch.Tensor:
    """Binary execute/skip decision (dynconv ``Gumbel`` / skip-conv Gumbel gate).

    Args:
        logits: ``(B, 1, H, W)``.
        tau: temperature of the Gumbel-sigmoid.
        noise: training: ``soft = sigmoid((x + g1 − g2)/τ)``, hard = ``soft >= 0.5`` straight-through;
            otherwise ``hard = x >= 0`` (no gradient needed).

    Returns:
        ``(B, 1, H, W)`` mask in {0, 1}.
    """
    if not noise:
        return (logits >= 0).to(logits.dtype)
    g1, g2 = (-torch.log(-torch.log(torch.rand_like(logits).clamp_min(torch.finfo(logits.dtype).tiny))) for _ in range(2))
    soft = torch.sigmoid((logits + g1 - g2) / tau)
    hard = (soft >= 0.5).to(logits.dtype)
    return hard - soft.detach() + soft


class SparseConvBase(nn.Conv2d):
    """``nn.Conv2d`` with per-video state, a dense mode and per-layer statistics.

    Subclasses implement :meth:`forward`; state keys, statistics and the sparse execution of the
    convolution (:meth:`masked_conv`) live here. State dict keys ``weight``/``bias`` are those of
    ``nn.Conv2d`` so pretrained dense weights load unchanged (gate parameters are extra keys).

    Args:
        dense_above: at inference, when the fraction of positions to compute exceeds this, the
            dense convolution (then the mask) is cheaper than the gather path and is run instead.
            1.0 disables the switch. The layers' default (0.25) is the crossover measured on CPU by
            ``benchmarks/ops_sparse_conv.py`` (256→256, 3×3, 96×96, gate cost included).
    """

    STAT_KEYS = ("skip", "reuse", "compute")

    def __init__(self, *args, dense_above: float = 0.25, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ConfigError(f"{type(self).__name__}: only groups=1, integer padding and padding_mode='zeros' are supported")
        if not 0.0 <= dense_above <= 1.0:
            raise ConfigError(f"{type(self).__name__}: dense_above must be in [0, 1], got {dense_above}")
        self.dense_above = dense_above
        self.dense_mode = False
        self.prev_input: torch.Tensor | None = None
        self.prev_output: torch.Tensor | None = None
        self.reset_statistics()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kwargs) -> SparseConvBase:
        """A sparse layer with the weights of ``conv`` (gate freshly initialised)."""
        layer = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias is not None, conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype,
            **kwargs,
        )
        with torch.no_grad():
            layer.weight.copy_(conv.weight)
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
        return layer

    # ---- per-video state ----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the previous frame (call at the start of every video / training clip)."""
        self.prev_input = None
        self.prev_output = None

    @contextmanager
    def dense(self) -> Iterator[None]:
        """Run every frame inside the block densely (memory frames of mixed sparse processing)."""
        previous, self.dense_mode = self.dense_mode, True
        try:
            yield
        finally:
            self.dense_mode = previous

    def has_state_for(self, x: torch.Tensor) -> bool:
        """True when a previous frame of the same shape is cached; raises if the shape changed."""
        if self.prev_input is None:
            return False
        if self.prev_input.shape != x.shape:
            raise ConfigError(
                f"{type(self).__name__}: input {tuple(x.shape)} differs from the previous frame's "
                f"{tuple(self.prev_input.shape)}; call reset() at the start of each video"
            )
        return True

    def remember(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """Cache this frame's input and output (kept in the graph while training, detached otherwise)."""
        keep = self.training and torch.is_grad_enabled()
        self.prev_input = x if keep else x.detach()
        self.prev_output = out if keep else out.detach()

    # ---- statistics ---------------------------------------------------------------------------
    def reset_statistics(self) -> None:
        """Zero the pixel and FLOP counters."""
        self.pixel_counts = dict.fromkeys(self.STAT_KEYS, 0)
        self.dense_pixels = 0
        self.executed_flops = 0
        self.total_dense_flops = 0
        self.gate_flops = 0

    def flops_per_position(self) -> int:
        """2 FLOPs per multiply-add of one output position: ``2·C_in·kh·kw·C_out``."""
        return 2 * self.in_channels * self.kernel_size[0] * self.kernel_size[1] * self.out_channels

    def record(self, decisions: dict[str, int] | None, positions: int, gate: nn.Conv2d | None) -> None:
        """Add one frame: ``decisions`` maps STAT_KEYS to pixel counts (None = dense frame)."""
        per = self.flops_per_position()
        self.total_dense_flops += per * positions
        if decisions is None:
            self.dense_pixels += positions
            self.executed_flops += per * positions
            return
        for key, count in decisions.items():
            self.pixel_counts[key] += count
        self.executed_flops += per * decisions["compute"]
        if gate is not None:
            self.gate_flops += 2 * gate.in_channels * gate.kernel_size[0] * gate.kernel_size[1] * gate.out_channels * positions

    def statistics(self) -> dict[str, float]:
        """Fractions of skip/reuse/compute over the sparse frames' pixels and FLOPs since the last reset.

        ``executed_flops`` counts the layer's convolution at the computed positions (dense frames in
        full); ``dense_flops`` is what the dense layer would have cost; ``gate_flops`` is the gate's cost.
        """
        sparse_pixels = sum(self.pixel_counts.values())
        stats = {f"{k}_fraction": (v / sparse_pixels if sparse_pixels else 0.0) for k, v in self.pixel_counts.items()}
        stats.update(
            executed_flops=float(self.executed_flops),
            dense_flops=float(self.total_dense_flops),
            gate_flops=float(self.gate_flops),
            flops_ratio=self.executed_flops / self.total_dense_flops if self.total_dense_flops else 0.0,
            dense_pixels=float(self.dense_pixels),
            sparse_pixels=float(sparse_pixels),
        )
        return stats

    # ---- execution ----------------------------------------------------------------------------
    def masked_conv(self, x: torch.Tensor, compute: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
        """Inference-time conv at the ``compute`` positions, 0 elsewhere.

        Args:
            x: ``(B, C_in, H, W)``; compute: ``(B, H_out, W_out)`` bool.

        Returns:
            ``(B, C_out, H_out, W_out)``; runs ``vidseg::sparse_conv2d`` unless the compute fraction
            exceeds ``dense_above`` (then dense conv + mask, same values).
        """
        bias = self.bias if with_bias else None
        if compute.numel() and compute.float().mean().item() > self.dense_above:
            dense = F.conv2d(x, self.weight, bias, self.stride, self.padding, self.dilation)
            if bool(compute.all()):
                return dense
            return torch.where(compute[:, None], dense, torch.zeros((), dtype=dense.dtype, device=dense.device))
        return sparse_conv2d(x, self.weight, bias, compute, list(self.stride), list(self.padding), list(self.dilation))
