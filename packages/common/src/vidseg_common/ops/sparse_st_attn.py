"""SSTVOS sparse spatio-temporal attention: grid, local, strided and local-strided (``vidseg::sparse_st_attn``).

``SparseAttn(Q, K, V)_p = softmax_{q ∈ I_p}(scale · Q_p·K_q) V_q`` (SSTVOS Eq. 5/6) with the connectivity
patterns ``I_p`` of :mod:`vidseg_common.ops.sparse_st_attn_patterns`. Decisions (``docs/reference/vos.md`` §1.2–1.4):

- no ``1/√d`` scaling by default (``scale=1``): the paper found scaling "reduced model effectiveness" and
  the released kernel has none; pass ``scale`` to ask for it;
- grid weights use the released CUDA kernel's slot layout (row incl. self, column and time excluding self,
  past *and* future frames); ``causal=True`` additionally empties every slot in a later frame;
- ``strided`` is the paper's ``I²`` (steps of ``h`` along each axis). The spatial step defaults to
  ``h = round(√W)``; the temporal step defaults to 1 (the released config's
  ``ATTENTION_STRIDE_TEMPORAL="Dense"``; the paper's literal ``I²`` is ``temporal_stride=h``);
- ``local_strided`` splits the heads into two groups "in sequence" (paper: "separate, sequential heads of
  multihead attention"): the first ``num_heads // 2`` heads use the local window, the others the strided
  pattern.

Implementations: :func:`sparse_st_attn_reference` (dense masked attention over ``S = T·H·W`` cells, the
oracle); the PyTorch path (default on CPU): three batched matmuls for grid
(:mod:`vidseg_common.ops.sparse_st_attn_grid`), dense attention inside residue classes for strided
(:mod:`vidseg_common.ops.sparse_st_attn_strided`), tiled window attention for local
(:mod:`vidseg_common.ops.sparse_st_attn_local`), and the chunked gather engine of
:mod:`vidseg_common.ops.sparse_st_attn_indexed` for every backward pass; and
a Triton forward kernel (CUDA default) through the ``indexed_attention`` engine. The three are registered as
the ``sparse_st_attn`` kernels of :mod:`vidseg_common.ops.backend` (``VIDSEG_OPS_BACKEND`` picks one).
Inputs are made contiguous silently. Double backward is not supported.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.backend import get_kernel, register_kernels, select_kernel
from vidseg_common.ops.sparse_st_attn_grid import grid_attention_forward
from vidseg_common.ops.sparse_st_attn_indexed import indexed_attention_backward
from vidseg_common.ops.sparse_st_attn_local import local_attention_forward
from vidseg_common.ops.sparse_st_attn_patterns import (
    check_pattern,
    connectivity_mask,
    default_kernel_size,
    default_stride,
    num_slots,
    slot_key_index,
)
from vidseg_common.ops.sparse_st_attn_strided import strided_attention_forward

_FLOAT_TYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_qkv(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, name: str = "sparse_st_attn") -> None:
    """Raise DataError unless ``query, key (N, C, T, H, W)`` and ``value (N, Cv, T, H, W)`` agree."""
    for label, x in (("query", query), ("key", key), ("value", value)):
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            raise DataError(f"{name}: {label} must be a 5-d tensor (N, C, T, H, W), got shape {tuple(getattr(x, 'shape', ()))}")
        if x.dtype not in _FLOAT_TYPES or x.dtype != query.dtype:
            raise DataError(f"{name}: {label} dtype {x.dtype} must be a floating type equal to query's ({query.dtype})")
        if x.device != query.device:
            raise DataError(f"{name}: {label} is on {x.device}, query on {query.device}")
    if key.shape != query.shape:
        raise DataError(f"{name}: key shape {tuple(key.shape)} must equal query shape {tuple(query.shape)}")
    if value.shape[0] != query.shape[0] or value.shape[2:] != query.shape[2:]:
        raise DataError(f"{name}: value shape {tuple(value.shape)} must be (N, Cv, T, H, W) = ({query.shape[0]}, Cv, {', '.join(map(str, query.shape[2:]))})")
    if min(query.shape) < 1 or value.shape[1] < 1:
        raise DataError(f"{name}: empty input (query {tuple(query.shape)}, value {tuple(value.shape)})")


def sparse_st_attn_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    pattern: str,
    params: list[int],
    causal: bool = False,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense attention over all ``S = T·H·W`` cells restricted by the boolean connectivity mask (the oracle).

    Args:
        query, key: ``(N, C, T, H, W)``.
        value: ``(N, Cv, T, H, W)``.
        pattern, params, causal: see :mod:`vidseg_common.ops.sparse_st_attn_patterns`.
        scale: multiplies the dot products.

    Returns:
        ``out (N, Cv, T, H, W)`` and dense ``weights (N, S, S)`` (query cell × key cell).
    """
    check_qkv(query, key, value)
    n, _, t, h, w = query.shape
    mask = connectivity_mask(pattern, params, [t, h, w], causal).to(query.device)
    q, k, v = (x.flatten(2) for x in (query, key, value))  # (N, C, S)
    logits = torch.einsum("ncp,ncq->npq", q, k) * scale
    weights = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
    out = torch.einsum("npq,ncq->ncp", weights, v)
    return out.reshape(n, -1, t, h, w), weights


def _to_engine(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, H, W)`` → contiguous ``(N, S, C)``."""
    return x.flatten(2).transpose(1, 2).contiguous()


def _finish(query, out, slots, need_weights):
    """``out (N, Cv, T, H, W)`` and ``slots (N, S, Z)`` → the op's outputs (weights ``(N, Z, T, H, W)`` or empty)."""
    n, _, t, h, w = query.shape
    if not need_weights:
        return out.contiguous(), query.new_empty(n, 0, t, h, w)
    return out.contiguous(), slots.transpose(1, 2).reshape(n, -1, t, h, w).contiguous()


def _reference_kernel(query, key, value, pattern, params, causal, scale, need_weights=True):
    """The oracle, its dense weights gathered into the slot layout."""
    n, _, t, h, w = query.shape
    index = slot_key_index(pattern, params, [t, h, w], causal, query.device)
    out, dense = sparse_st_attn_reference(query, key, value, pattern, params, causal, scale)
    slots = dense.gather(-1, index.clamp_min(0).expand(n, -1, -1)).masked_fill(index < 0, 0.0)
    return _finish(query, out, slots, need_weights)


def _indexed_kernel(engine_backend, query, key, value, pattern, params, causal, scale, need_weights=True):
    """The ``indexed_attention`` engine (``engine_backend``'s kernel) on the pattern's slot table."""
    n, _, t, h, w = query.shape
    index = slot_key_index(pattern, params, [t, h, w], causal, query.device)
    engine = get_kernel("indexed_attention", engine_backend)
    out, slots = engine(_to_engine(query), _to_engine(key), _to_engine(value), index[None], scale)
    return _finish(query, out.transpose(1, 2).reshape(n, -1, t, h, w), slots, need_weights)


def _torch_kernel(query, key, value, pattern, params, causal, scale, need_weights=True):
    """The pattern's vectorised path (grid / strided / local), the PyTorch engine otherwise."""
    if pattern == "grid":
        return grid_attention_forward(query, key, value, causal, scale, need_weights)
    if pattern == "strided":
        return strided_attention_forward(query, key, value, params, causal, scale, need_weights)
    if pattern == "local":
        return local_attention_forward(query, key, value, params[0], causal, scale, need_weights)
    return _indexed_kernel("torch", query, key, value, pattern, params, causal, scale, need_weights)


def _triton_kernel(query, key, value, pattern, params, causal, scale, need_weights=True):
    """The Triton engine on every pattern."""
    return _indexed_kernel("triton", query, key, value, pattern, params, causal, scale, need_weights)


register_kernels("sparse_st_attn", reference=_reference_kernel, torch=_torch_kernel, triton=_triton_kernel)


def _forward_impl(query, key, value, pattern, params, causal, scale, need_weights=True):
    check_qkv(query, key, value)
    check_pattern(pattern, params, list(query.shape[2:]))
    kernel = select_kernel("sparse_st_attn", query.device)
    return kernel(query, key, value, pattern, params, causal, scale, need_weights)


@torch.library.custom_op("vidseg::sparse_st_attn", mutates_args=())
def _sparse_st_attn_op(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    pattern: str,
    params: list[int],
    causal: bool,
    scale: float,
    need_weights: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    return _forward_impl(query, key, value, pattern, params, causal, scale, need_weights)


@_sparse_st_attn_op.register_kernel("cuda")
def _sparse_st_attn_cuda(query, key, value, pattern, params, causal, scale, need_weights=True):
    return _forward_impl(query, key, value, pattern, params, causal, scale, need_weights)


@_sparse_st_attn_op.register_fake
def _sparse_st_attn_fake(query, key, value, pattern, params, causal, scale, need_weights=True):
    n, _, t, h, w = query.shape
    z = num_slots(pattern, params, [t, h, w]) if need_weights else 0
    return value.new_empty(value.shape), query.new_empty(n, z, t, h, w)


@torch.library.custom_op("vidseg::sparse_st_attn_backward", mutates_args=())
def _sparse_st_attn_backward_op(
    grad_out: torch.Tensor,
    grad_weights: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    weights: torch.Tensor,
    pattern: str,
    params: list[int],
    causal: bool,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, _, t, h, w = query.shape
    if weights.shape[1] == 0:  # forward ran with need_weights=False: recompute them
        weights = _forward_impl(query, key, value, pattern, params, causal, scale, True)[1]
        grad_weights = torch.zeros_like(weights)
    index = slot_key_index(pattern, params, [t, h, w], causal, query.device)
    dq, dk, dv = indexed_attention_backward(
        _to_engine(grad_out), _to_engine(grad_weights), _to_engine(query), _to_engine(key), _to_engine(value),
        index[None], _to_engine(weights), scale,
    )
    back = [x.transpose(1, 2).reshape(n, -1, t, h, w).contiguous() for x in (dq, dk, dv)]
    return back[0], back[1], back[2]


@_sparse_st_attn_backward_op.register_fake
def _sparse_st_attn_backward_fake(grad_out, grad_weights, query, key, value, weights, pattern, params, causal, scale):
    return query.new_empty(query.shape), key.new_empty(key.shape), value.new_empty(value.shape)


def _setup_context(ctx, inputs, output) -> None:
    query, key, value, pattern, params, causal, scale, *_ = inputs
    ctx.save_for_backward(query, key, value, output[1])
    ctx.config = (pattern, list(params), causal, scale)


def _backward(ctx, grad_out, grad_weights):
    query, key, value, weights = ctx.saved_tensors
    grad_out = torch.zeros_like(value) if grad_out is None else grad_out
    grad_weights = torch.zeros_like(weights) if grad_weights is None else grad_weights
    dq, dk, dv = _sparse_st_attn_backward_op(grad_out, grad_weights, query, key, value, weights, *ctx.config)
    return dq, dk, dv, None, None, None, None, None


_sparse_st_attn_op.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.vidseg.sparse_st_attn)
def _sparse_st_attn_flops(query_shape, key_shape, value_shape, pattern, params, *args, out_shape=None, **kwargs) -> int:
    """2 FLOPs per multiply-add over the pattern's ``Z`` slots per cell: logits (C) and aggregation (Cv).

    That is what the gather engine and the Triton kernel execute, and the grid / strided matmul paths up to
    the masked self/padding slots; the tiled CPU forward of ``local`` scores whole tile patches
    (≈2–3× more multiply-adds), which is not counted.
    """
    n, c, t, h, w = query_shape
    return 2 * n * t * h * w * num_slots(pattern, params, [t, h, w]) * (c + value_shape[1])


@register_flop_formula(torch.ops.vidseg.sparse_st_attn_backward)
def _sparse_st_attn_backward_flops(grad_out_shape, grad_weights_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """dprob and dvalue (Cv each), dquery and dkey (C each) per slot (+ a forward when weights were not kept)."""
    n, c, t, h, w = query_shape
    pattern, params = args[1], args[2]
    z = num_slots(pattern, params, [t, h, w])
    recompute = 0 if grad_weights_shape[1] else 1
    return 2 * n * t * h * w * z * (2 + recompute) * (c + value_shape[1])


def pattern_params(
    pattern: str, width: int, kernel_size: int | None = None, stride: int | None = None, temporal_stride: int = 1
) -> list[int]:
    """The op's integer parameters for ``pattern`` (``grid``/``local``/``strided``) with the paper's defaults."""
    if pattern == "grid":
        return []
    if pattern == "local":
        return [default_kernel_size(width) if kernel_size is None else int(kernel_size)]
    if pattern == "strided":
        step = default_stride(width) if stride is None else int(stride)
        return [int(temporal_stride), step, step]
    raise ConfigError(f"sparse_st_attn: unknown pattern {pattern!r} (expected grid, local, strided or local_strided)")


def _split_heads(x: torch.Tensor, num_heads: int, name: str) -> torch.Tensor:
    b, c = x.shape[:2]
    if c % num_heads:
        raise DataError(f"sparse_st_attn: {name} has {c} channels, not divisible by num_heads={num_heads}")
    return x.reshape(b * num_heads, c // num_heads, *x.shape[2:])


def sparse_st_attn(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    pattern: str = "grid",
    *,
    num_heads: int = 1,
    kernel_size: int | None = None,
    stride: int | None = None,
    temporal_stride: int = 1,
    causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """Multi-head sparse spatio-temporal attention.

    Args:
        query, key: ``(B, C, T, H, W)``; ``C`` is split into ``num_heads`` heads.
        value: ``(B, Cv, T, H, W)``.
        pattern: ``grid``, ``local``, ``strided`` or ``local_strided``.
        num_heads: number of heads (``local_strided`` needs at least 2, even).
        kernel_size: local window side (odd; default ``√W`` rounded down to odd).
        stride: strided step ``h`` (default ``round(√W)``).
        temporal_stride: strided step along time (default 1, "Dense").
        causal: no attention to later frames.
        scale: multiplies the dot products; ``None`` = 1 (no ``1/√d``, as in the paper).
        return_weights: also return the attention weights in the pattern's slot layout.

    Returns:
        ``out (B, Cv, T, H, W)`` and, if asked, ``weights (B, num_heads, Z, T, H, W)`` — for
        ``local_strided`` a pair (local heads, strided heads).
    """
    check_qkv(query, key, value)
    if num_heads < 1:
        raise ConfigError(f"sparse_st_attn: num_heads must be >= 1, got {num_heads}")
    b, _, t, h, w = query.shape
    scale = 1.0 if scale is None else float(scale)
    q, k, v = (_split_heads(x, num_heads, nm) for x, nm in ((query, "query"), (key, "key"), (value, "value")))
    if pattern != "local_strided":
        params = pattern_params(pattern, w, kernel_size, stride, temporal_stride)
        out, weights = _sparse_st_attn_op(q, k, v, pattern, params, causal, scale, return_weights)
        out = out.reshape(b, -1, t, h, w)
        return (out, weights.reshape(b, num_heads, -1, t, h, w)) if return_weights else out
    if num_heads < 2 or num_heads % 2:
        raise ConfigError(f"sparse_st_attn: local_strided needs an even num_heads >= 2, got {num_heads}")
    half = num_heads // 2
    groups = [x.reshape(b, num_heads, *x.shape[1:]) for x in (q, k, v)]
    outs, weights = [], []
    for sel, pat in ((slice(0, half), "local"), (slice(half, None), "strided")):
        qg, kg, vg = (x[:, sel].reshape(b * half, *x.shape[2:]) for x in groups)
        params = pattern_params(pat, w, kernel_size, stride, temporal_stride)
        o, wt = _sparse_st_attn_op(qg, kg, vg, pat, params, causal, scale, return_weights)
        outs.append(o.reshape(b, half, -1, t, h, w))
        weights.append(wt.reshape(b, half, -1, t, h, w))
    out = torch.cat(outs, dim=1).reshape(b, -1, t, h, w)
    return (out, (weights[0], weights[1])) if return_weights else out
