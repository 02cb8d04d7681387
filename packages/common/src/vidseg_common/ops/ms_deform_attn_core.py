"""Pieces shared by the deformable-attention ops (``ms_deform_attn``, ``st_deform_attn``).

Shape arguments (the flat ``list[int]`` the op schemas take), input checks with messages naming the
argument, and :func:`deform_attn_gather`, the vectorised PyTorch core of both ops.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "check_deform_inputs",
    "check_level_start_index",
    "deform_attn_gather",
    "flatten_spatial_shapes",
    "level_sizes",
]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def flatten_spatial_shapes(
    spatial_shapes: Tensor | Sequence[int] | Sequence[Sequence[int]], dims: int
) -> list[int]:
    """Spatial shapes as the flat ``list[int]`` the op schema takes.

    Args:
        spatial_shapes: ``(L, dims)`` integer tensor (Deformable DETR's ``input_spatial_shapes``), a
            sequence of ``dims``-tuples, or an already flat sequence of ``L·dims`` ints. A tensor is read
            with ``.tolist()``, which is a graph break under ``torch.compile``: pass Python ints there.
        dims: entries per level (2 for ``(H, W)``, 3 for ``(T, H, W)``).

    Returns:
        ``[H_0, W_0, H_1, W_1, ...]`` (or the ``(T, H, W)`` triples, flattened).
    """
    if isinstance(spatial_shapes, Tensor):
        if spatial_shapes.is_floating_point() or spatial_shapes.dim() != 2 or spatial_shapes.shape[1] != dims:
            raise ValueError(
                f"spatial_shapes must be an integer tensor of shape (L, {dims}), got "
                f"{tuple(spatial_shapes.shape)} {spatial_shapes.dtype}"
            )
        flat = [int(v) for v in spatial_shapes.flatten().tolist()]
    else:
        flat = []
        for item in spatial_shapes:
            if isinstance(item, (int, torch.SymInt)) and not isinstance(item, bool):
                flat.append(item)
            elif isinstance(item, Sequence) and len(item) == dims:
                flat.extend(int(v) for v in item)
            else:
                raise ValueError(f"spatial_shapes entries must be ints or {dims}-tuples, got {item!r}")
    if len(flat) == 0 or len(flat) % dims != 0:
        raise ValueError(f"spatial_shapes must hold L·{dims} ints (L ≥ 1), got {len(flat)}")
    for v in flat:
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"spatial_shapes must be positive, got {flat}")
    return flat


def check_level_start_index(level_start_index: Tensor, sizes: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``level_start_index`` is the exclusive cumulative sum of ``sizes``."""
    expected = [0]
    for s in sizes[:-1]:
        expected.append(expected[-1] + s)
    got = [int(v) for v in level_start_index.flatten().tolist()]
    if got != expected:
        raise ValueError(f"level_start_index {got} does not match spatial_shapes (expected {expected})")


def check_deform_inputs(
    value: Tensor, spatial_shapes: Sequence[int], locations: Tensor, weights: Tensor, dims: int, name: str
) -> None:
    """Shape/dtype/device checks shared by the deformable-attention ops (message names the argument).

    Args:
        value: ``(N, S, M, D)``.
        spatial_shapes: flat ``L·dims`` ints.
        locations: ``(N, Lq, M, L, P, dims)`` (``dims`` coordinates per point, x first).
        weights: ``(N, Lq, M, L, P)``.
        dims: 2 (``(H, W)`` levels, ``(x, y)`` points) or 3 (``(T, H, W)`` levels, ``(x, y, t)`` points).
        name: the op name used in messages.
    """
    for arg, t in (("value", value), ("sampling_locations", locations), ("attention_weights", weights)):
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{name}: {arg} must be a floating tensor, got {t.dtype}")
    if not (value.dtype == locations.dtype == weights.dtype):
        raise TypeError(
            f"{name}: value, sampling_locations and attention_weights must share a dtype, got "
            f"{value.dtype}, {locations.dtype}, {weights.dtype}"
        )
    if not (value.device == locations.device == weights.device):
        raise ValueError(
            f"{name}: inputs are on different devices ({value.device}, {locations.device}, {weights.device})"
        )
    if value.dim() != 4:
        raise ValueError(f"{name}: value must be (N, S, M, D), got shape {tuple(value.shape)}")
    if len(spatial_shapes) == 0 or len(spatial_shapes) % dims != 0:
        raise ValueError(f"{name}: spatial_shapes must hold L·{dims} ints, got {list(spatial_shapes)}")
    n, s, m, _ = value.shape
    n_levels = len(spatial_shapes) // dims
    sizes = level_sizes(spatial_shapes, dims)
    if sum(sizes) != s:
        raise ValueError(
            f"{name}: value has S={s} positions but spatial_shapes {list(spatial_shapes)} sum to {sum(sizes)}"
        )
    if locations.dim() != 6 or locations.shape[-1] != dims:
        raise ValueError(
            f"{name}: sampling_locations must be (N, Lq, M, L, P, {dims}), got {tuple(locations.shape)}"
        )
    if tuple(locations.shape[:5]) != (n, locations.shape[1], m, n_levels, locations.shape[4]):
        raise ValueError(
            f"{name}: sampling_locations {tuple(locations.shape)} does not match value (N={n}, M={m}) and "
            f"L={n_levels} levels"
        )
    if tuple(weights.shape) != tuple(locations.shape[:5]):
        raise ValueError(
            f"{name}: attention_weights must be (N, Lq, M, L, P) = {tuple(locations.shape[:5])}, got {tuple(weights.shape)}"
        )


def level_sizes(spatial_shapes: Sequence[int], dims: int) -> list[int]:
    """Number of positions of each level (``H·W`` or ``T·H·W``) from the flat shapes list."""
    sizes = []
    for i in range(0, len(spatial_shapes), dims):
        size = 1
        for v in spatial_shapes[i : i + dims]:
            size = size * v
        sizes.append(size)
    return sizes


def deform_attn_gather(
    value: Tensor,
    spatial_shapes: Sequence[int],
    sampling_locations: Tensor,
    attention_weights: Tensor,
    dims: int,
    chunk_entries: int = 1 << 21,
) -> Tensor:
    """Vectorised deformable attention for 2-D (bilinear) or 3-D (trilinear) levels, via ``F.embedding_bag``.

    Every (batch, query, head) is one bag of ``L·P·2^dims`` rows of ``value`` viewed as an ``(N·S·M, D)`` table:
    the neighbours of its points, with per-sample weight ``attention · interpolation weight`` (0 for a
    neighbour outside its level, whose index is clamped inside). ``embedding_bag(mode='sum')`` computes the
    weighted sums without materialising the ``(N, Lq, M, L·P, D)`` sampled values that the ``grid_sample``
    formulation builds; it is differentiable in the table and in the per-sample weights (hence the locations).
    Indices are built per axis and combined by outer sums, so only the final ``2^dims``-wide index and
    weight tensors are full size, and queries are processed in chunks of about ``chunk_entries`` gathered
    rows: peak memory stays bounded, and the temporaries stay small enough (8 MB at the default) for the
    allocator to reuse them from chunk to chunk instead of page-faulting fresh memory for each.

    Args:
        value: ``(N, S, M, D)``.
        spatial_shapes: flat per-level extents, slowest axis first (``[H, W, ...]`` or ``[T, H, W, ...]``).
        sampling_locations: ``(N, Lq, M, L, P, dims)``, coordinates fastest axis first (``(x, y[, t])``).
        attention_weights: ``(N, Lq, M, L, P)``.
        dims: 2 or 3.
        chunk_entries: gathered rows (index entries) per query chunk.

    Returns:
        ``(N, Lq, M·D)``.
    """
    n, s, m, d = value.shape
    lq, n_levels, n_points = (
        sampling_locations.shape[1],
        sampling_locations.shape[3],
        sampling_locations.shape[4],
    )
    device = sampling_locations.device
    if n * lq * m == 0:
        return value.new_zeros(n, lq, m * d)
    extents = [list(reversed(spatial_shapes[dims * i : dims * i + dims])) for i in range(n_levels)]  # x first
    strides = []  # per level, per axis (x first), in table rows: position stride · M
    for ext in extents:
        axis_strides = [m]
        for e in ext[:-1]:
            axis_strides.append(axis_strides[-1] * e)
        strides.append(axis_strides)
    starts = [0]
    for size in level_sizes(spatial_shapes, dims)[:-1]:
        starts.append(starts[-1] + size)
    index_dtype = torch.int32 if n * s * m < 2**31 else torch.int64
    # Layout (N, Lq, M, corners, L, P): the corner axis sits outside the contiguous (L, P) block, so the
    # broadcasts below stay vectorised. Level constants are (L, 1) to broadcast over (L, P).
    extent_f = torch.tensor(extents, dtype=sampling_locations.dtype, device=device).T[
        ..., None
    ]  # (dims, L, 1)
    extent_i = torch.tensor(extents, dtype=index_dtype, device=device).T[..., None]
    stride_i = torch.tensor(strides, dtype=index_dtype, device=device).T[..., None]
    row0 = (  # first table row of (batch b, level l, head h): (b·S + start_l)·M + h, shape (N, 1, M, 1, L, 1)
        torch.arange(n, device=device, dtype=index_dtype).view(n, 1, 1, 1, 1, 1) * (s * m)
        + torch.tensor(starts, dtype=index_dtype, device=device).view(1, 1, 1, 1, n_levels, 1) * m
        + torch.arange(m, device=device, dtype=index_dtype).view(1, 1, m, 1, 1, 1)
    )
    two = torch.arange(2, device=device, dtype=index_dtype).view(2, 1, 1)
    table = value.reshape(n * s * m, d)
    chunk = max(1, chunk_entries // max(1, n * m * n_levels * n_points * 2**dims))  # queries per chunk
    outs = []
    for q0 in range(0, lq, chunk):
        loc = sampling_locations[:, q0 : q0 + chunk]
        pix = loc.movedim(-1, 0) * extent_f[:, None, None, None] - 0.5  # (dims, N, Lq', M, L, P)
        # Points further than a pixel outside read zeros whatever their value: clamping them keeps the
        # integer corners in range (no int overflow for huge coordinates) without changing the result.
        pix = torch.minimum(pix.clamp_min(-2.0), extent_f[:, None, None, None] + 1.0)
        index = row0
        weight = attention_weights[:, q0 : q0 + chunk, :, None]  # (N, Lq', M, 1, L, P)
        for axis in range(dims):
            base_f = torch.floor(pix[axis].detach())
            frac = (pix[axis] - base_f)[:, :, :, None]  # (N, Lq', M, 1, L, P)
            corner = base_f.to(index_dtype)[:, :, :, None] + two  # (N, Lq', M, 2, L, P)
            clamped = torch.clamp(corner, min=torch.zeros_like(extent_i[axis]), max=extent_i[axis] - 1)
            axis_weight = torch.cat([1 - frac, frac], 3) * (clamped == corner)
            axis_offset = clamped * stride_i[axis]
            index = (axis_offset[:, :, :, :, None] + index[:, :, :, None]).flatten(3, 4)
            weight = (axis_weight[:, :, :, :, None] * weight[:, :, :, None]).flatten(3, 4)
        bags = index.shape[0] * index.shape[1] * m
        out = F.embedding_bag(
            index.reshape(bags, -1), table, per_sample_weights=weight.reshape(bags, -1), mode="sum"
        )
        outs.append(out.view(n, -1, m * d))
    return outs[0] if len(outs) == 1 else torch.cat(outs, 1)
