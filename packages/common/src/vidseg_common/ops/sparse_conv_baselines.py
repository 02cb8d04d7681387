"""The two sparse-convolution baselines SpVOS compares with (Table I): static and residual sparse.

* :class:`StaticSparseConv2d` — dynconv-style (Verelst & Tuytelaars, CVPR 2020; docs/reference/vos.md §2.7): a
  1-channel gate conv on the current input, binary Gumbel-sigmoid, ``out = M·conv(x)`` (skip → 0).
  No temporal state.
* :class:`ResidualSparseConv2d` — skip-convolution-style (Habibian et al., CVPR 2021; docs/reference/vos.md §2.8):
  ``z_t = z_{t−1} + M ⊙ conv(x_t − x_{t−1})`` with a 1-channel Gumbel gate on ``|x_t − x_{t−1}|``
  (bias initialised to 0.6, τ = 2/3 as in skip-conv's ``GumbelGate``), per-video state, ``reset()``.

Gate design: both gates are a conv ``C_in → 1`` with the layer's own kernel size/stride/padding,
with bias. SpVOS does not describe its baselines' gates; this choice gives +0.21 MiB on the Q+D
layers where SpVOS Table I implies +0.22 MiB (207.78 → ~208.00), the closest of the designs
tried (a fixed 3×3 dynconv gate gives +0.53 MiB). dynconv's global ``Squeeze`` branch is omitted.
At inference both gates run without noise (``logit >= 0``), as dynconv does.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv_gates import SparseConvBase, binary_gumbel_gate, gate_conv2d

__all__ = ["ResidualSparseConv2d", "StaticSparseConv2d"]


class _BinaryGatedConv(SparseConvBase):
    """Shared constructor: the conv, a ``C_in → 1`` gate with the same geometry, a temperature."""

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
        gate_bias_init: float | None = None,
        dense_above: float = 0.25,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
            device=device, dtype=dtype, dense_above=dense_above,
        )
        if tau <= 0:
            raise ConfigError(f"{type(self).__name__}: tau must be > 0, got {tau}")
        self.tau = tau
        self.gate = nn.Conv2d(
            in_channels, 1, self.kernel_size, self.stride, self.padding, self.dilation, bias=True,
            device=device, dtype=dtype,
        )
        if gate_bias_init is not None:
            nn.init.constant_(self.gate.bias, gate_bias_init)
        self.last_gate: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}"

    def _record_binary(self, gate: torch.Tensor, off_key: str) -> None:
        on = int(gate.detach().sum())
        total = gate.numel()
        counts = {"skip": 0, "reuse": 0, "compute": on}
        counts[off_key] = total - on
        self.record(counts, total, self.gate)
        self.last_gate = gate


class StaticSparseConv2d(_BinaryGatedConv):
    """dynconv-style static sparse conv: ``out = M·conv(x)``, ``M = gate(x) ∈ {0,1}`` (skip → 0).

    Args: as :class:`~vidseg_common.ops.triple_sparse_conv.TripleSparseConv2d`; ``tau`` defaults to 1
    (dynconv CIFAR / SpVOS), ``gate_bias_init`` to the conv default.

    Shapes: ``x: (B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``; ``last_gate: (B, 1, H_out, W_out)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense_mode:
            out = self._conv_forward(x, self.weight, self.bias)
            self.record(None, out.shape[0] * out.shape[2] * out.shape[3], None)
            return out
        gate = binary_gumbel_gate(gate_conv2d([x], self.gate), self.tau, noise=self.training)
        if self.training:
            out = gate * self._conv_forward(x, self.weight, self.bias)
        else:
            out = self.masked_conv(x, gate[:, 0] > 0)
        self._record_binary(gate, off_key="skip")
        return out


class ResidualSparseConv2d(_BinaryGatedConv):
    """Skip-conv-style residual sparse conv: ``z_t = z_{t−1} + M ⊙ conv_{no bias}(x_t − x_{t−1})``.

    ``conv`` is linear, so with ``M = 1`` everywhere ``z_t = conv(x_t)`` exactly; where ``M = 0`` the
    previous output is kept (counted as "reuse"), which is how errors accumulate (SpVOS Fig. 1).
    The first frame of a video and frames inside :meth:`dense` run the full convolution.

    Args: as :class:`StaticSparseConv2d`, with skip-conv's defaults ``tau = 2/3``, ``gate_bias_init = 0.6``.

    Shapes: ``x: (B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``; ``last_gate: (B, 1, H_out, W_out)``.
    """

    def __init__(self, *args, tau: float = 2.0 / 3.0, gate_bias_init: float | None = 0.6, **kwargs) -> None:
        super().__init__(*args, tau=tau, gate_bias_init=gate_bias_init, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense_mode or not self.has_state_for(x):
            out = self._conv_forward(x, self.weight, self.bias)
            self.record(None, out.shape[0] * out.shape[2] * out.shape[3], None)
            self.remember(x, out)
            return out
        residual = x - self.prev_input
        gate = binary_gumbel_gate(gate_conv2d([residual.abs()], self.gate), self.tau, noise=self.training)
        if self.training:
            delta = gate * self._conv_forward(residual, self.weight, None)
        else:
            delta = self.masked_conv(residual, gate[:, 0] > 0, with_bias=False)
        out = self.prev_output + delta
        self._record_binary(gate, off_key="reuse")
        self.remember(x, out)
        return out
