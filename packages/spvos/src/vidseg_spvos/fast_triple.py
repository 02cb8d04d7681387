"""``FastTripleSparseConv2d``: SpVOS's triple sparse convolution with a lean CPU inference path.

Training, dense frames and the first frame of a video run :class:`~vidseg_common.ops.triple_sparse_conv.
TripleSparseConv2d` unchanged. A sparse frame at inference (``eval()`` and no autograd) runs
:meth:`FastTripleSparseConv2d.sparse_inference` instead, which gives the same output (tested to 1e-5):

* the gate decisions ``argmax P`` (no Gumbel noise at inference, as common's layer) are counted with one
  ``bincount`` (the one host sync also feeds the statistics);
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
from vidseg_common.ops.triple_sparse_conv import COMPUTE, REUSE, SKIP, TripleSparseConv2d

__all__ = ["FastTripleSparseConv2d"]


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
        choice = gate_conv2d([self.prev_input, x], self.gate).argmax(1)  # (B, H_out, W_out)
        counts = torch.bincount(choice.flatten(), minlength=3).tolist()
        positions = choice.numel()
        compute = choice == COMPUTE
        if counts[COMPUTE] > self.dense_above * positions:  # dense kernel, then select (common's rule)
            dense = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
            zero = torch.zeros((), dtype=dense.dtype, device=dense.device)
            out = torch.where(compute[:, None], dense, torch.where((choice == REUSE)[:, None], prev_out, zero))
        else:
            out = self._reuse_or_zero(choice, prev_out, counts[REUSE], positions)
            if counts[COMPUTE]:
                self._write_computed(x, compute, out)
        self.record({"skip": counts[SKIP], "reuse": counts[REUSE], "compute": counts[COMPUTE]}, positions, self.gate)
        self.last_gate = torch.stack([choice == SKIP, choice == REUSE, compute], dim=1).to(x.dtype)
        return out

    @staticmethod
    def _reuse_or_zero(choice: torch.Tensor, prev_out: torch.Tensor, reused: int, positions: int) -> torch.Tensor:
        """``F_{o,t−1}`` where the gate says reuse, 0 elsewhere: ``(B, C_out, H_out, W_out)``, a new tensor."""
        if reused == 0:
            return torch.zeros_like(prev_out)
        if reused == positions:
            return prev_out.clone()
        zero = torch.zeros((), dtype=prev_out.dtype, device=prev_out.device)
        return torch.where((choice == REUSE)[:, None], prev_out, zero)

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
