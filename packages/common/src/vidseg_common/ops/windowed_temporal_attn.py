"""STT windowed temporal attention with expanding key windows (``vidseg::windowed_temporal_attn``).

STT (Li et al., ACM MM'21, ``docs/reference/vss.md`` §1.2): each *selected* query position ``(u, v)`` of the
current frame attends, jointly (one softmax), to a ``(2·l_t+1)²`` window centred on ``(u, v)`` in each of the
``T`` previous key maps, ``t = 1`` the farthest and ``t = T`` the nearest, with the radius of Eq. 5
``l_t = min(s + (T − t)·ε, e)``; ``n_k = Σ_t (2·l_t + 1)²`` keys per query (:func:`num_temporal_keys`;
Table 3's key sizes hold for ``T = 7``). Window cells outside the map are masked (docs/reference/vss.md §1.4: zero padding
+ −inf logits). Scaled by ``1/√d`` per head by default (STT's heads are standard scaled attention).

Memory-light: no unfold of all windows at once. The PyTorch forward
(:mod:`vidseg_common.ops.windowed_temporal_attn_tiled`) scores tiles of queries against shared key patches
cut one frame at a time with batched matmuls; the backward pass (and the Triton forward) gather keys a
chunk of slots at a time (:mod:`vidseg_common.ops.sparse_st_attn_indexed`); nothing of size ``Q·n_k·C``
is materialised. Slots are ordered ``(t, dy, dx)`` row-major, which is the layout of the returned weights.
Without ``return_weights`` the backward pass recomputes them. The reference, PyTorch and Triton forwards are
registered as the ``windowed_temporal_attn`` kernels of :mod:`vidseg_common.ops.backend` (``VIDSEG_OPS_BACKEND``).
"""

from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import register_flop_formula

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.backend import get_kernel, register_kernels, select_kernel
from vidseg_common.ops.sparse_st_attn_indexed import indexed_attention_backward
from vidseg_common.ops.windowed_temporal_attn_tiled import windowed_attention_tiled


def temporal_window_radii(num_frames: int, start: int, end: int, expansion: int) -> list[int]:
    """Eq. 5 radii ``[l_1, …, l_T]`` with ``l_t = min(s + (T − t)·ε, e)`` (``t = 1`` is the farthest frame)."""
    if num_frames < 1 or start < 0 or end < start or expansion < 0:
        raise ConfigError(f"windowed_temporal_attn: need T >= 1 and 0 <= s <= e, ε >= 0; got T={num_frames}, s={start}, e={end}, ε={expansion}")
    return [min(start + (num_frames - t) * expansion, end) for t in range(1, num_frames + 1)]


def num_temporal_keys(num_frames: int, start: int, end: int, expansion: int) -> int:
    """Key count per query ``n_k = Σ_t (2·l_t + 1)²`` (STT Table 3's "key size")."""
    return sum((2 * r + 1) ** 2 for r in temporal_window_radii(num_frames, start, end, expansion))


@functools.lru_cache(maxsize=16)
def _offsets_cpu(radii: tuple[int, ...]) -> torch.Tensor:
    parts = []
    for t, r in enumerate(radii):
        dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        parts.append(torch.stack([torch.full_like(dy, t), dy, dx], dim=-1).reshape(-1, 3))
    return torch.cat(parts)  # (n_k, 3): frame, dy, dx


def window_key_index(positions: torch.Tensor, radii: list[int], height: int, width: int) -> torch.Tensor:
    """Flat key index ``t·h·w + y·w + x`` of every (query, slot); ``-1`` outside the map.

    Args:
        positions: ``(B, Q)`` int64 flat query positions ``u·w + v`` in ``[0, h·w)``.
        radii: ``[l_1, …, l_T]``.

    Returns:
        ``(B, Q, n_k)`` int64.
    """
    offsets = _offsets_cpu(tuple(int(r) for r in radii)).to(positions.device)
    y = (positions // width).unsqueeze(-1) + offsets[:, 1]
    x = (positions % width).unsqueeze(-1) + offsets[:, 2]
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    index = (offsets[:, 0] * height + y) * width + x
    return torch.where(inside, index, torch.full_like(index, -1))


def _check(
    query: torch.Tensor, positions: torch.Tensor, key: torch.Tensor, value: torch.Tensor, radii: list[int], values: bool = True
) -> None:
    """Shapes/dtypes, and with ``values`` the position range (data-dependent: only inside the op)."""
    if query.dim() != 3 or key.dim() != 5 or value.dim() != 5:
        raise DataError(f"windowed_temporal_attn: expected query (B, Q, C), key/value (B, T, C, h, w); got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    b, q, c = query.shape
    if key.shape[0] != b or key.shape[2] != c or value.shape[:2] != key.shape[:2] or value.shape[3:] != key.shape[3:]:
        raise DataError(f"windowed_temporal_attn: shapes disagree: query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}")
    if not query.is_floating_point() or key.dtype != query.dtype or value.dtype != query.dtype:
        raise DataError(f"windowed_temporal_attn: query/key/value must share one floating dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    if positions.dim() != 2 or positions.shape[1] != q or b % max(1, positions.shape[0]) or positions.dtype != torch.int64:
        raise DataError(f"windowed_temporal_attn: positions must be int64 (Bp, Q={q}) with Bp dividing B={b}, got {positions.dtype} {tuple(positions.shape)}")
    if len(radii) != key.shape[1] or min(radii, default=0) < 0:
        raise ConfigError(f"windowed_temporal_attn: need one radius >= 0 per key frame (T={key.shape[1]}), got {list(radii)}")
    hw = key.shape[3] * key.shape[4]
    if values and positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= hw):
        raise DataError(f"windowed_temporal_attn: positions must lie in [0, h·w = {hw}), got [{int(positions.min())}, {int(positions.max())}]")


def _flatten_keys(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, C, h, w)`` → contiguous ``(B, T·h·w, C)``."""
    return x.permute(0, 1, 3, 4, 2).reshape(x.shape[0], -1, x.shape[2])


def windowed_temporal_attn_reference(
    query: torch.Tensor, positions: torch.Tensor, key: torch.Tensor, value: torch.Tensor, radii: list[int], scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense attention over all ``T·h·w`` keys with the boolean window mask built by loops (the oracle).

    Returns:
        ``out (B, Q, Cv)`` and dense ``weights (B, Q, T·h·w)``.
    """
    _check(query, positions, key, value, radii)
    b, q, _ = query.shape
    t_n, h, w = key.shape[1], key.shape[3], key.shape[4]
    mask = torch.zeros(positions.shape[0], q, t_n * h * w, dtype=torch.bool)
    for i in range(positions.shape[0]):
        for j in range(q):
            u, v = divmod(int(positions[i, j]), w)
            for t in range(t_n):
                for y in range(h):
                    for x in range(w):
                        mask[i, j, (t * h + y) * w + x] = abs(y - u) <= radii[t] and abs(x - v) <= radii[t]
    mask = mask.repeat_interleave(b // positions.shape[0], dim=0)  # rows i·G … (i+1)·G − 1 share positions[i]
    logits = torch.einsum("bqc,bkc->bqk", query, _flatten_keys(key)) * scale
    weights = torch.softmax(logits.masked_fill(~mask.to(query.device), float("-inf")), dim=-1)
    return torch.einsum("bqk,bkc->bqc", weights, _flatten_keys(value)), weights


def _reference_kernel(query, positions, key, value, radii, scale, need_weights=True):
    """The oracle, its dense weights gathered into the ``(t, dy, dx)`` slot layout."""
    index = window_key_index(positions, radii, key.shape[3], key.shape[4])
    out, dense = windowed_temporal_attn_reference(query, positions, key, value, radii, scale)
    index = index.repeat_interleave(query.shape[0] // index.shape[0], dim=0)
    weights = dense.gather(-1, index.clamp_min(0)).masked_fill(index < 0, 0.0)
    return (out, weights) if need_weights else (out, weights[..., :0].contiguous())


def _triton_kernel(query, positions, key, value, radii, scale, need_weights=True):
    """The Triton ``indexed_attention`` engine on the window slot table (always computes the weights)."""
    index = window_key_index(positions, radii, key.shape[3], key.shape[4])
    engine = get_kernel("indexed_attention", "triton")
    out, weights = engine(query.contiguous(), _flatten_keys(key).contiguous(), _flatten_keys(value).contiguous(), index, scale)
    return (out, weights) if need_weights else (out, weights[..., :0].contiguous())


register_kernels(
    "windowed_temporal_attn", reference=_reference_kernel, torch=windowed_attention_tiled, triton=_triton_kernel
)


def _forward_impl(query, positions, key, value, radii, scale, need_weights=True):
    _check(query, positions, key, value, radii)
    kernel = select_kernel("windowed_temporal_attn", query.device)
    return kernel(query, positions, key, value, radii, scale, need_weights)


@torch.library.custom_op("vidseg::windowed_temporal_attn", mutates_args=())
def _windowed_temporal_attn_op(
    query: torch.Tensor,
    positions: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    radii: list[int],
    scale: float,
    need_weights: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    return _forward_impl(query, positions, key, value, radii, scale, need_weights)


@_windowed_temporal_attn_op.register_kernel("cuda")
def _windowed_temporal_attn_cuda(query, positions, key, value, radii, scale, need_weights=True):
    return _forward_impl(query, positions, key, value, radii, scale, need_weights)


@_windowed_temporal_attn_op.register_fake
def _windowed_temporal_attn_fake(query, positions, key, value, radii, scale, need_weights=True):
    n_k = sum((2 * r + 1) ** 2 for r in radii) if need_weights else 0
    return query.new_empty(query.shape[0], query.shape[1], value.shape[2]), query.new_empty(query.shape[0], query.shape[1], n_k)


@torch.library.custom_op("vidseg::windowed_temporal_attn_backward", mutates_args=())
def _windowed_backward_op(
    grad_out: torch.Tensor,
    grad_weights: torch.Tensor,
    query: torch.Tensor,
    positions: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    weights: torch.Tensor,
    radii: list[int],
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if weights.shape[-1] == 0:  # forward ran with need_weights=False: recompute them
        weights = _forward_impl(query, positions, key, value, radii, scale, True)[1]
        grad_weights = torch.zeros_like(weights)
    index = window_key_index(positions, radii, key.shape[3], key.shape[4])
    dq, dk, dv = indexed_attention_backward(
        grad_out.contiguous(), grad_weights.contiguous(), query.contiguous(), _flatten_keys(key).contiguous(),
        _flatten_keys(value).contiguous(), index, weights.contiguous(), scale,
    )

    def unflatten(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = like.shape
        return x.reshape(b, t, h, w, c).permute(0, 1, 4, 2, 3).contiguous()

    return dq, unflatten(dk, key), unflatten(dv, value)


@_windowed_backward_op.register_fake
def _windowed_backward_fake(grad_out, grad_weights, query, positions, key, value, weights, radii, scale):
    return query.new_empty(query.shape), key.new_empty(key.shape), value.new_empty(value.shape)


def _setup_context(ctx, inputs, output) -> None:
    query, positions, key, value, radii, scale, *_ = inputs
    ctx.save_for_backward(query, positions, key, value, output[1])
    ctx.config = (list(radii), scale)


def _backward(ctx, grad_out, grad_weights):
    query, positions, key, value, weights = ctx.saved_tensors
    grad_out = query.new_zeros(query.shape[0], query.shape[1], value.shape[2]) if grad_out is None else grad_out
    grad_weights = torch.zeros_like(weights) if grad_weights is None else grad_weights
    dq, dk, dv = _windowed_backward_op(grad_out, grad_weights, query, positions, key, value, weights, *ctx.config)
    return dq, None, dk, dv, None, None, None


_windowed_temporal_attn_op.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula(torch.ops.vidseg.windowed_temporal_attn)
def _windowed_flops(query_shape, positions_shape, key_shape, value_shape, radii, scale, *args, out_shape=None, **kwargs) -> int:
    """2 FLOPs per multiply-add: logits (C) and aggregation (Cv) over the ``n_k`` window slots of each query.

    This is the algorithm's work (what the gather paths execute). The CPU tiled forward scores each tile's
    queries against whole patches, ≈3× more multiply-adds at STT's defaults, which depend on the data
    (queries per tile), so they are not what is counted here.
    """
    b, q, c = query_shape
    return 2 * b * q * sum((2 * r + 1) ** 2 for r in radii) * (c + value_shape[2])


@register_flop_formula(torch.ops.vidseg.windowed_temporal_attn_backward)
def _windowed_backward_flops(grad_out_shape, grad_weights_shape, query_shape, positions_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """dprob and dvalue (Cv each), dquery and dkey (C each) per slot (+ a forward when weights were not kept)."""
    b, q, c = query_shape
    n_k = sum((2 * r + 1) ** 2 for r in args[1])
    return 2 * b * q * n_k * (2 if grad_weights_shape[2] else 3) * (c + value_shape[2])


def windowed_temporal_attn(
    query: torch.Tensor,
    positions: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    start: int = 1,
    end: int = 5,
    expansion: int = 1,
    num_heads: int = 1,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Multi-head windowed temporal attention (STT defaults ``s, e, ε = 1, 5, 1``).

    Args:
        query: ``(B, Q, C)`` features of the selected query positions.
        positions: ``(B, Q)`` int64 flat positions ``u·w + v`` of those queries in the ``h×w`` map.
        key: ``(B, T, C, h, w)`` previous key maps, ``T`` axis from the farthest to the nearest frame.
        value: ``(B, T, Cv, h, w)``.
        start, end, expansion: ``s``, ``e``, ``ε`` of Eq. 5.
        num_heads: heads split ``C`` and ``Cv``.
        scale: multiplies the dot products; ``None`` = ``1/√(C/num_heads)``.
        return_weights: also return ``weights (B, num_heads, Q, n_k)`` in the ``(t, dy, dx)`` slot order.

    Returns:
        ``out (B, Q, Cv)`` (and the weights).
    """
    if query.dim() != 3 or key.dim() != 5 or value.dim() != 5:
        raise DataError(f"windowed_temporal_attn: expected query (B, Q, C), key/value (B, T, C, h, w); got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    radii = temporal_window_radii(key.shape[1], start, end, expansion)
    _check(query, positions, key, value, radii, values=False)
    b, q, c = query.shape
    if num_heads < 1 or c % num_heads or value.shape[2] % num_heads:
        raise DataError(f"windowed_temporal_attn: channels C={c}, Cv={value.shape[2]} must be divisible by num_heads={num_heads}")
    scale = (c // num_heads) ** -0.5 if scale is None else float(scale)
    t, h, w = key.shape[1], key.shape[3], key.shape[4]
    qh = query.reshape(b, q, num_heads, -1).transpose(1, 2).reshape(b * num_heads, q, -1)
    kh, vh = (x.reshape(b, t, num_heads, -1, h, w).transpose(1, 2).reshape(b * num_heads, t, -1, h, w) for x in (key, value))
    out, weights = _windowed_temporal_attn_op(qh, positions, kh, vh, radii, scale, return_weights)
    out = out.reshape(b, num_heads, q, -1).transpose(1, 2).reshape(b, q, -1)
    return (out, weights.reshape(b, num_heads, q, -1)) if return_weights else out
