"""``FastTripleSparseConv2d``: SpVOS's triple sparse convolution with a lean CPU inference path.

Training, dense frames and the first frame of a video run :class:`~vidseg_common.ops.triple_sparse_conv.
TripleSparseConv2d` unchanged. A sparse frame at inference (``eval()`` and no autograd) runs
:meth:`FastTripleSparseConv2d.sparse_inference` instead, which gives the same output (tested to 1e-5):

* the gate decisions ``argmax P`` (no Gumbel noise at inference, as common's layer) come from two elementwise
  comparisons of the 3 logit planes (:func:`triple_decisions`): ``aten::argmax`` over a 3-long strided dim was
  18 % of the sparse model's CPU time at 240×432 (torch.profiler), more than the gates' GEMMs;
* nothing computed (the usual case once the gates are trained: SpVOS Fig. 5, 10 % compute; ~0.2 % here)
  → no convolution at all, the output is ``where(reuse, F_{o,t−1}, 0)`` built in one pass;
* a few computed positions → only their im2col columns are gathered (``C_in·kh·kw × N``), one GEMM, and the
  ``C_out × N`` values are written into the reuse/skip map (no zero ``C_out × H·W`` map, no transpose copy, no
  ``.item()`` on the compute fraction, no custom-op argument checks per call);
* above ``dense_above`` of the positions: dense conv, then the computed/reused/skipped selection (as common).

Common's path (``SparseConvBase.masked_conv`` + ``vidseg::sparse_conv2d``) allocates and fills a zero output map
and gathers through the checked custom op even when no position is computed; with ~18 layers on small feature
maps that overhead cost more than the skipped convolutions saved (fps ratio 0.69 at 64×96). This class
lives in the SpVOS package (common is not edited here); it keeps common's state dict keys and state, so
checkpoints of either load into the other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidseg_common.ops.sparse_conv2d import gather_taps
from vidseg_common.ops.sparse_conv_gates import gate_conv2d
from vidseg_common.ops.triple_sparse_conv import TripleSparseConv2d

__all__ = ["FastTripleSparseConv2d", "first_argmax", "triple_decisions"]


def triple_decisions(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmax`` of the {skip, reuse, compute} gate logits as two masks, with ``argmax``'s tie rule (first wins).

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

    ``aten::argmax`` over a short outer dim is slow on CPU (8 ms for ``(3, 240, 432)``, 12 % of the non-sparse
    model's inference time); ties go to the first index as in ``argmax``.

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


class FastTripleSparseConv2d(TripleSparseConv2d):
    """:class:`TripleSparseConv2d` whose sparse inference frames skip all work on non-computed positions.

    Same arguments, parameters, state and statistics as :class:`TripleSparseConv2d`.

    Shapes:
        ``x: (B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One frame; sparse inference frames take :meth:`sparse_inference`, everything else common's forward."""
        if self.training or torch.is_grad_enabled() or self.dense_mode or not self.has_state_for(x):
            return super().forward(x)
        out = self.sparse_inference(x)
        self.remember(x, out)
        return out

    def sparse_inference(self, x: torch.Tensor) -> torch.Tensor:
        """Triple-gated output of one sparse frame without autograd; records statistics and ``last_gate``.

        Args:
            x: ``(B, C_in, H, W)`` this frame's input (``prev_input`` / ``prev_output`` hold frame ``t−1``).

        Returns:
            ``(B, C_out, H_out, W_out)``: conv at "compute", ``F_{o,t−1}`` at "reuse", 0 at "skip" positions.
        """
        prev_out = self.prev_output
        compute, reuse = triple_decisions(self.fast_gate_logits(self.prev_input, x))  # (B, H_out, W_out)
        n_compute, n_reuse = torch.stack([compute.sum(), reuse.sum()]).tolist()
        positions = compute.numel()
        if n_compute > self.dense_above * positions:  # dense kernel, then select (common's rule)
            dense = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
            zero = torch.zeros((), dtype=dense.dtype, device=dense.device)
            out = torch.where(compute[:, None], dense, torch.where(reuse[:, None], prev_out, zero))
        else:
            out = self._reuse_or_zero(reuse, prev_out, n_reuse, positions)
            if n_compute:
                self._write_computed(x, compute, out)
        counts = {"skip": positions - n_compute - n_reuse, "reuse": n_reuse, "compute": n_compute}
        self.record(counts, positions, self.gate)
        self.last_gate = torch.stack([~(compute | reuse), reuse, compute], dim=1).to(x.dtype)
        return out

    def fast_gate_logits(self, prev_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``gate(concat(prev_x, x))`` in 3 ops for stride-1 gates (common's :func:`gate_conv2d` otherwise).

        Common's ``gate_conv2d`` projects both inputs with one GEMM per input and adds the ``kh·kw`` shifted
        windows of the 3-channel result one slice at a time (~30 small ops per layer, most of a sparse layer's
        cost on small maps). Here the shifted sum is one ``F.fold`` (col2im) of the projections with the kernel
        flipped: the tap ``(ky, kx)`` of source pixel ``s`` lands on output ``s − k + p``, i.e. fold's
        ``s + k' − p'`` with ``k' = kh−1−ky`` and ``p' = kh−1−p``. Same values up to summation order.

        Args:
            prev_x, x: ``(B, C_in, H, W)``.

        Returns:
            ``(B, 3, H_out, W_out)`` logits.
        """
        gate = self.gate
        if gate.stride != (1, 1) or gate.dilation != (1, 1):
            return gate_conv2d([prev_x, x], gate)
        bsz, c_in, h, w = x.shape
        c_out, _, kh, kw = gate.weight.shape
        rows = gate.weight.flip((2, 3)).permute(0, 2, 3, 1).reshape(c_out * kh * kw, 2 * c_in)
        proj = torch.baddbmm(rows[:, c_in:] @ x.reshape(bsz, c_in, h * w), rows[:, :c_in].expand(bsz, -1, -1),
                             prev_x.reshape(bsz, c_in, h * w))
        (py, px) = gate.padding
        h_out, w_out = h + 2 * py - kh + 1, w + 2 * px - kw + 1
        if (kh, kw) != (1, 1):
            proj = F.fold(proj, (h_out, w_out), (kh, kw), padding=(kh - 1 - py, kw - 1 - px))
        logits = proj.view(bsz, c_out, h_out, w_out)
        return logits + gate.bias.view(1, -1, 1, 1) if gate.bias is not None else logits

    @staticmethod
    def _reuse_or_zero(reuse: torch.Tensor, prev_out: torch.Tensor, reused: int, positions: int) -> torch.Tensor:
        """``F_{o,t−1}`` where the gate says reuse, 0 elsewhere: ``(B, C_out, H_out, W_out)``, a new tensor."""
        if reused == 0:
            return torch.zeros_like(prev_out)
        if reused == positions:
            return prev_out.clone()
        zero = torch.zeros((), dtype=prev_out.dtype, device=prev_out.device)
        return torch.where(reuse[:, None], prev_out, zero)

    def _write_computed(self, x: torch.Tensor, compute: torch.Tensor, out: torch.Tensor) -> None:
        """Convolution at the ``compute`` positions only, written into ``out`` in place.

        Args:
            x: ``(B, C_in, H, W)``; compute: ``(B, H_out, W_out)`` bool; out: ``(B, C_out, H_out, W_out)``
                contiguous.
        """
        bsz, c_in, h, w = x.shape
        c_out, _, kh, kw = self.weight.shape
        positions, pixels, inside = gather_taps(compute, (h, w), (kh, kw), list(self.stride), list(self.padding),
                                                list(self.dilation))
        source = x.transpose(0, 1).reshape(c_in, bsz * h * w)  # a view when B = 1
        cols = source.index_select(1, pixels.reshape(-1))  # (C_in, kh·kw·N), tap-major
        if any(self.padding):
            cols.mul_(inside.reshape(1, -1).to(cols.dtype))
        cols = cols.view(c_in * kh * kw, -1)  # rows (c, tap) match weight.reshape(C_out, C_in·kh·kw)
        w_mat = self.weight.reshape(c_out, c_in * kh * kw)
        values = w_mat @ cols if self.bias is None else torch.addmm(self.bias[:, None], w_mat, cols)
        hw_out = out.shape[2] * out.shape[3]
        batch, flat = positions.div(hw_out, rounding_mode="floor"), positions.remainder(hw_out)
        out.view(bsz, c_out, hw_out)[batch, :, flat] = values.t()
