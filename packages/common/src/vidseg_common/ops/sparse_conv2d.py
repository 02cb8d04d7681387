"""``vidseg::sparse_conv2d``: a 2-D convolution evaluated only at the output positions of a mask.

This is the compute kernel of the triple sparse convolution of SpVOS (Lin et al., TIP 2023, Eq. 8: the
"compute" policy) and of its static / residual sparse baselines: the output equals the dense
``F.conv2d`` where ``mask`` is true and **0 elsewhere** (no bias outside the mask).

Three implementations, registered with :func:`vidseg_common.ops.backend.register_kernels` under
``sparse_conv2d`` and selected per call by ``VIDSEG_OPS_BACKEND``:

- :func:`sparse_conv2d_reference`: the definition, a dense ``F.conv2d`` followed by the mask;
- the vectorised PyTorch path (default on CPU): gather → GEMM → scatter. Every input channel row is
  gathered at the ``kh·kw`` tap pixels of the computed positions only (im2col on those positions,
  taps on the zero padding zeroed), multiplied with the weight in its native ``(C_out, C_in·kh·kw)``
  layout and scattered into a zero output, so the cost follows the number of computed positions;
- a Triton implicit-GEMM kernel (CUDA, or CPU under ``TRITON_INTERPRET=1``), in
  :mod:`vidseg_common.ops._triton.sparse_conv2d` (registered by name: imported by the registry when
  first selected, never by this module).

:func:`sparse_conv2d_into` is the inference-time variant without the custom op: it writes the convolution
at the mask positions into an existing map (the other positions keep their values) with one GEMM.

Only ``groups=1`` convolutions are supported (every convolution SpVOS sparsifies is dense). Inputs of
any memory layout are accepted (gathering reads through a ``(C_in, B·H·W)`` view, copied only when
``B > 1`` or ``x`` is not NCHW-contiguous; documented silent ``.contiguous()``). The backward pass
(``vidseg::sparse_conv2d_backward``) is the transposed gather → GEMM → scatter-add at the same
positions (same sparse cost); training code normally uses the dense masked computation instead (see
:class:`vidseg_common.ops.triple_sparse_conv.TripleSparseConv2d`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula

from vidseg_common.errors import ConfigError
from vidseg_common.ops.backend import register_kernels, select_kernel

__all__ = ["conv_output_size", "sparse_conv2d", "sparse_conv2d_into", "sparse_conv2d_reference"]

# Positions gathered per GEMM in the PyTorch path: bounds the im2col buffer to
# C_in·kh·kw × ROWS_PER_CHUNK elements whatever the mask density (a memory/speed knob, not a model one:
# at 256 channels, 3×3, it is 9 MiB, about one output map of 96×96×256 floats).
ROWS_PER_CHUNK = 1024


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (``nn.Conv2d`` formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pair(name: str, value: list[int], minimum: int) -> tuple[int, int]:
    if len(value) != 2 or any(int(v) < minimum for v in value):
        raise ConfigError(f"sparse_conv2d: {name} must be 2 integers >= {minimum}, got {list(value)}")
    return int(value[0]), int(value[1])


def check_sparse_conv2d_args(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> None:
    """Raise :class:`ConfigError` naming the argument when shapes, dtypes or devices are inconsistent."""
    _pair("stride", stride, 1)
    _pair("padding", padding, 0)
    _pair("dilation", dilation, 1)
    if x.dim() != 4 or weight.dim() != 4:
        raise ConfigError(f"sparse_conv2d: x must be (B, C_in, H, W) and weight (C_out, C_in, kh, kw), got {tuple(x.shape)} and {tuple(weight.shape)}")
    if not x.is_floating_point() or weight.dtype != x.dtype:
        raise ConfigError(f"sparse_conv2d: x and weight must share one floating dtype, got {x.dtype} and {weight.dtype}")
    if weight.shape[1] != x.shape[1]:
        raise ConfigError(f"sparse_conv2d: weight has {weight.shape[1]} input channels but x has {x.shape[1]} (groups != 1 is not supported)")
    if bias is not None and (bias.shape != (weight.shape[0],) or bias.dtype != x.dtype):
        raise ConfigError(f"sparse_conv2d: bias must be ({weight.shape[0]},) {x.dtype}, got {tuple(bias.shape)} {bias.dtype}")
    if mask.dtype != torch.bool:
        raise ConfigError(f"sparse_conv2d: mask must be a bool tensor, got {mask.dtype}")
    h_out, w_out = (
        conv_output_size(x.shape[2 + i], weight.shape[2 + i], stride[i], padding[i], dilation[i]) for i in range(2)
    )
    if h_out < 1 or w_out < 1:
        raise ConfigError(f"sparse_conv2d: input {tuple(x.shape[2:])} is smaller than the dilated kernel {tuple(weight.shape[2:])}")
    if tuple(mask.shape) != (x.shape[0], h_out, w_out):
        raise ConfigError(f"sparse_conv2d: mask must be (B, H_out, W_out) = {(x.shape[0], h_out, w_out)}, got {tuple(mask.shape)}")
    devices = {t.device for t in (x, weight, mask) + ((bias,) if bias is not None else ())}
    if len(devices) != 1:
        raise ConfigError(f"sparse_conv2d: all tensors must be on one device, got {sorted(map(str, devices))}")


def sparse_conv2d_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> torch.Tensor:
    """The definition: dense convolution, then zero where ``mask`` is false.

    Args:
        x: ``(B, C_in, H, W)`` input.
        weight: ``(C_out, C_in, kh, kw)``; bias: ``(C_out,)`` or None.
        mask: ``(B, H_out, W_out)`` bool, the positions to compute.
        stride, padding, dilation: 2 ints each (``nn.Conv2d`` semantics, zero padding).

    Returns:
        ``(B, C_out, H_out, W_out)``: ``conv2d(x)`` where ``mask``, 0 elsewhere.
    """
    check_sparse_conv2d_args(x, weight, bias, mask, stride, padding, dilation)
    dense = F.conv2d(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation))
    return torch.where(mask[:, None], dense, torch.zeros((), dtype=dense.dtype, device=dense.device))


def gather_indices(
    mask: torch.Tensor, padded_hw: tuple[int, int], kernel: tuple[int, int], stride: list[int], dilation: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the computed positions and of the input rows each one reads.

    Args:
        mask: ``(B, H_out, W_out)`` bool.
        padded_hw: ``(H + 2·pad_y, W + 2·pad_x)`` of the padded input.
        kernel: ``(kh, kw)``.

    Returns:
        ``positions``: ``(N,)`` int64 flat indices into ``B·H_out·W_out``;
        ``rows``: ``(N, kh·kw)`` int64 flat indices into the padded channels-last input ``B·Hp·Wp``.
    """
    _, h_out, w_out = mask.shape
    hp, wp = padded_hw
    positions = mask.reshape(-1).nonzero().squeeze(1)
    b, rem = positions.div(h_out * w_out, rounding_mode="floor"), positions.remainder(h_out * w_out)
    oy, ox = rem.div(w_out, rounding_mode="floor"), rem.remainder(w_out)
    base = b * (hp * wp) + oy * (stride[0] * wp) + ox * stride[1]
    ky = torch.arange(kernel[0], device=mask.device) * (dilation[0] * wp)
    kx = torch.arange(kernel[1], device=mask.device) * dilation[1]
    return positions, base[:, None] + (ky[:, None] + kx[None, :]).reshape(1, -1)


def padded_channels_last(x: torch.Tensor, padding: list[int]) -> torch.Tensor:
    """``(B, C, H, W)`` → zero-padded ``(B·Hp·Wp, C)`` contiguous rows (one copy; only the border is zeroed)."""
    bsz, c, h, w = x.shape
    py, px = padding
    rows = x.new_empty(bsz, h + 2 * py, w + 2 * px, c)
    if py:
        rows[:, :py].zero_()
        rows[:, py + h :].zero_()
    if px:
        rows[:, py : py + h, :px].zero_()
        rows[:, py : py + h, px + w :].zero_()
    rows[:, py : py + h, px : px + w].copy_(x.permute(0, 2, 3, 1))
    return rows.view(-1, c)


def gather_taps(
    mask: torch.Tensor, hw: tuple[int, int], kernel: tuple[int, int], stride: list[int], padding: list[int], dilation: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input pixels read by every tap of every computed position, for a ``(C, B·H·W)`` source.

    Args:
        mask: ``(B, H_out, W_out)`` bool; hw: unpadded ``(H, W)``; kernel: ``(kh, kw)``.

    Returns:
        ``positions (N,)`` flat indices into ``B·H_out·W_out``; ``pixels (kh·kw, N)`` flat indices into
        ``B·H·W`` (clamped inside the image); ``inside (kh·kw, N)`` bool, False where the tap falls on
        the zero padding.
    """
    _, h_out, w_out = mask.shape
    h, w = hw
    positions = mask.reshape(-1).nonzero().squeeze(1)
    b, rem = positions.div(h_out * w_out, rounding_mode="floor"), positions.remainder(h_out * w_out)
    oy, ox = rem.div(w_out, rounding_mode="floor"), rem.remainder(w_out)
    ky = torch.arange(kernel[0], device=mask.device)[:, None, None] * dilation[0]
    kx = torch.arange(kernel[1], device=mask.device)[None, :, None] * dilation[1]
    iy = oy * stride[0] - padding[0] + ky
    ix = ox * stride[1] - padding[1] + kx
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    pixels = b * (h * w) + iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)
    return positions, pixels.reshape(kernel[0] * kernel[1], -1), inside.reshape(kernel[0] * kernel[1], -1)


def sparse_conv2d_torch(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> torch.Tensor:
    """Vectorised gather → GEMM → scatter path. Same contract as the reference.

    The source is ``x`` viewed as ``(C_in, B·H·W)`` (no copy for ``B = 1``): every channel row is
    gathered at the ``kh·kw·N`` tap pixels (cache-friendly, one 2-D ``index_select``), taps on the
    padding are zeroed, and the ``(C_in·kh·kw, N)`` columns multiply the weight in its native
    ``(C_out, C_in·kh·kw)`` layout; the ``(C_out, N)`` result is scattered into a zero
    ``(C_out, B·H_out·W_out)`` output (no permuting copy for ``B = 1``).
    """
    bsz, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    _, h_out, w_out = mask.shape
    source = x.transpose(0, 1).reshape(c_in, bsz * h * w)
    positions, pixels, inside = gather_taps(mask, (h, w), (kh, kw), stride, padding, dilation)
    w_mat = weight.reshape(c_out, c_in * kh * kw)
    out = x.new_zeros(c_out, bsz * h_out * w_out)
    for start in range(0, positions.numel(), ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, positions.numel())
        cols = source.index_select(1, pixels[:, start:stop].reshape(-1))
        if any(padding):  # zero the (few) taps that fall on the padding
            cols.index_fill_(1, (~inside[:, start:stop].reshape(-1)).nonzero().squeeze(1), 0)
        cols = cols.view(c_in * kh * kw, stop - start)
        values = w_mat @ cols if bias is None else torch.addmm(bias[:, None], w_mat, cols)
        out.index_copy_(1, positions[start:stop], values)
    return out.view(c_out, bsz, h_out, w_out).transpose(0, 1).contiguous()


def sparse_conv2d_into(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    stride: list[int] | tuple[int, int],
    padding: list[int] | tuple[int, int],
    dilation: list[int] | tuple[int, int],
    out: torch.Tensor,
) -> torch.Tensor:
    """Write the convolution at the ``mask`` positions into ``out``; the other positions keep their values.

    The inference-time form of ``vidseg::sparse_conv2d`` for few computed positions (no custom op, no
    argument checks, no autograd, no zero output map): the ``C_in·kh·kw × N`` im2col columns of the
    ``N`` computed positions are gathered from ``x`` viewed as ``(C_in, B·H·W)`` (taps on the zero padding
    multiplied by 0), one GEMM with the weight in its native ``(C_out, C_in·kh·kw)`` layout gives the
    ``C_out × N`` values, and they are stored into ``out`` in place. Unlike the op's PyTorch path the
    columns are not chunked: meant for ``N`` up to a fraction of the map.

    Args:
        x: ``(B, C_in, H, W)``.
        weight: ``(C_out, C_in, kh, kw)``; bias: ``(C_out,)`` or None.
        mask: ``(B, H_out, W_out)`` bool, the positions to compute.
        stride, padding, dilation: 2 ints each (``nn.Conv2d`` semantics, zero padding).
        out: ``(B, C_out, H_out, W_out)``, same dtype as ``x`` (any memory layout); written in place.

    Returns:
        ``out``.
    """
    bsz, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    positions, pixels, inside = gather_taps(mask, (h, w), (kh, kw), list(stride), list(padding), list(dilation))
    source = x.transpose(0, 1).reshape(c_in, bsz * h * w)  # a view when B = 1
    cols = source.index_select(1, pixels.reshape(-1))  # (C_in, kh·kw·N), tap-major
    if any(padding):
        cols.mul_(inside.reshape(1, -1).to(cols.dtype))
    cols = cols.view(c_in * kh * kw, -1)  # rows (c, tap) match weight.reshape(C_out, C_in·kh·kw)
    w_mat = weight.reshape(c_out, c_in * kh * kw)
    values = w_mat @ cols if bias is None else torch.addmm(bias[:, None], w_mat, cols)
    hw_out = out.shape[2] * out.shape[3]
    batch, flat = positions.div(hw_out, rounding_mode="floor"), positions.remainder(hw_out)
    if out.is_contiguous():
        out.view(bsz, c_out, hw_out)[batch, :, flat] = values.t()
    else:  # e.g. channels_last
        out[batch, :, flat.div(out.shape[3], rounding_mode="floor"), flat.remainder(out.shape[3])] = values.t()
    return out


register_kernels(
    "sparse_conv2d",
    reference=sparse_conv2d_reference,
    torch=sparse_conv2d_torch,
    triton="vidseg_common.ops._triton.sparse_conv2d:sparse_conv2d_triton",
)


def _dispatch(x, weight, bias, mask, stride, padding, dilation) -> torch.Tensor:
    check_sparse_conv2d_args(x, weight, bias, mask, stride, padding, dilation)
    return select_kernel("sparse_conv2d", x.device)(x, weight, bias, mask, stride, padding, dilation)


@torch.library.custom_op("vidseg::sparse_conv2d", mutates_args=())
def sparse_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> torch.Tensor:
    """Convolution at the positions of ``mask`` only; 0 elsewhere (see :func:`sparse_conv2d_reference`).

    Args:
        x: ``(B, C_in, H, W)`` float input (any memory layout).
        weight: ``(C_out, C_in, kh, kw)``, same dtype; bias: ``(C_out,)`` or None.
        mask: ``(B, H_out, W_out)`` bool, the output positions to compute.
        stride, padding, dilation: ``list[int]`` of 2 (``nn.Conv2d`` semantics, zero padding).

    Returns:
        ``(B, C_out, H_out, W_out)`` contiguous.
    """
    return _dispatch(x, weight, bias, mask, stride, padding, dilation)


@sparse_conv2d.register_kernel("cuda")
def _sparse_conv2d_cuda(x, weight, bias, mask, stride, padding, dilation):
    return _dispatch(x, weight, bias, mask, stride, padding, dilation)


@sparse_conv2d.register_fake
def _sparse_conv2d_fake(x, weight, bias, mask, stride, padding, dilation):
    check_sparse_conv2d_args(x, weight, bias, mask, stride, padding, dilation)
    return x.new_empty((x.shape[0], weight.shape[0], mask.shape[1], mask.shape[2]))


def sparse_conv2d_backward_torch(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse backward: the transposed gather → GEMM → scatter-add, at the computed positions only.

    Returns:
        ``grad_x (B, C_in, H, W)``, ``grad_weight (C_out, C_in, kh, kw)``, ``grad_bias (C_out,)``.
    """
    bsz, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    rows_in = padded_channels_last(x, padding)
    positions, rows = gather_indices(mask, (hp, wp), (kh, kw), stride, dilation)
    grad_rows = grad_out.permute(0, 2, 3, 1).reshape(-1, c_out).index_select(0, positions)
    w_mat = weight.permute(2, 3, 1, 0).reshape(kh * kw * c_in, c_out)
    grad_w_mat = w_mat.new_zeros(w_mat.shape)
    grad_in = torch.zeros_like(rows_in)
    for start in range(0, positions.numel(), ROWS_PER_CHUNK):
        chunk_rows = rows[start : start + ROWS_PER_CHUNK].reshape(-1)
        grad_chunk = grad_rows[start : start + ROWS_PER_CHUNK]
        cols = rows_in.index_select(0, chunk_rows).reshape(-1, kh * kw * c_in)
        grad_w_mat.addmm_(cols.t(), grad_chunk)
        grad_in.index_add_(0, chunk_rows, (grad_chunk @ w_mat.t()).reshape(-1, c_in))
    grad_x = grad_in.view(bsz, hp, wp, c_in)[:, padding[0] : padding[0] + h, padding[1] : padding[1] + w]
    grad_weight = grad_w_mat.view(kh, kw, c_in, c_out).permute(3, 2, 0, 1)
    return grad_x.permute(0, 3, 1, 2).contiguous(), grad_weight.contiguous(), grad_rows.sum(0)


@torch.library.custom_op("vidseg::sparse_conv2d_backward", mutates_args=())
def _sparse_conv2d_backward_op(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward of ``vidseg::sparse_conv2d`` as its own op (opaque to tracing, like the forward)."""
    return sparse_conv2d_backward_torch(grad_out.contiguous(), x, weight, mask, stride, padding, dilation)


@_sparse_conv2d_backward_op.register_fake
def _sparse_conv2d_backward_fake(grad_out, x, weight, mask, stride, padding, dilation):
    return torch.empty_like(x), torch.empty_like(weight), weight.new_empty(weight.shape[0])


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, mask, stride, padding, dilation = inputs
    ctx.save_for_backward(x, weight, mask)
    ctx.conv_args = (stride, padding, dilation)
    ctx.has_bias = bias is not None


def _backward(ctx, grad_out):
    x, weight, mask = ctx.saved_tensors
    grad_x, grad_w, grad_b = _sparse_conv2d_backward_op(grad_out, x, weight, mask, *ctx.conv_args)
    needs = ctx.needs_input_grad
    return (
        grad_x if needs[0] else None,
        grad_w if needs[1] else None,
        grad_b if ctx.has_bias and needs[2] else None,
        None,
        None,
        None,
        None,
    )


sparse_conv2d.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.vidseg.sparse_conv2d, get_raw=True)
def _sparse_conv2d_flops(x, weight, bias, mask, stride, padding, dilation, out_val=None, **kwargs) -> int:
    """2 FLOPs per multiply-add at the computed positions only: ``2 · N · C_in·kh·kw · C_out``."""
    computed = int(mask.sum())
    return 2 * computed * weight.shape[0] * weight.shape[1] * weight.shape[2] * weight.shape[3]


@register_flop_formula(torch.ops.vidseg.sparse_conv2d_backward, get_raw=True)
def _sparse_conv2d_backward_flops(grad_out, x, weight, mask, stride, padding, dilation, out_val=None, **kwargs) -> int:
    """Input and weight gradients: two GEMMs of the forward's size, ``2 · 2 · N · C_in·kh·kw · C_out``."""
    return 2 * _sparse_conv2d_flops(x, weight, None, mask, stride, padding, dilation)
