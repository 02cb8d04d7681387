"""Connectivity patterns of SSTVOS sparse spatio-temporal attention (grid, local, strided).

Every pattern is described twice, on purpose:

- :func:`connectivity_mask` builds the dense boolean matrix ``M (S, S)`` (``S = T·H·W``) straight from the
  set definitions of the paper (SSTVOS §3 / ``docs/reference/vos.md`` §1.3–1.4) with plain loops. It is the
  test oracle (dense masked attention) and is deliberately independent of the slot layout below.
- :func:`slot_key_index` builds the compact *slot layout* ``(S, Z)`` used by the fast paths and by the
  returned attention weights: for query cell ``p`` and slot ``z`` the flat index of the key cell, or ``-1``
  for an empty slot (outside the frame, or a future frame under causal masking).

Slot layouts (cells flattened as ``t·H·W + y·W + x``):

- ``grid`` (no parameters): the released CUDA kernel's layout, ``Z = W + H + T − 2``: slots ``0..W−1`` the
  whole row of ``p`` *including* ``p``; the next ``H − 1`` the column *without* ``p``; the last ``T − 1`` the
  same ``(y, x)`` in the other frames (past and future; future ones are empty when ``causal``).
- ``local`` (``[k]``, k odd): a centred ``k×k`` spatial window in every frame of the clip,
  ``Z = T·k²``, ordered ``(t', dy, dx)`` with ``t'`` the absolute frame and ``dy, dx ∈ [−k//2, k//2]``.
  The paper (Table 6) never defines "local" formally; docs/reference/vos.md §1.4 picks the centred window over all τ
  buffer frames.
- ``strided`` (``[s_t, s_h, s_w]``): all cells reachable from ``p`` with steps of ``s`` along each axis,
  i.e. ``I²_p`` of the paper. Slot ``(i, j, l)`` is the cell ``(t mod s_t + i·s_t, y mod s_h + j·s_h,
  x mod s_w + l·s_w)``, ``Z = ⌈T/s_t⌉·⌈H/s_h⌉·⌈W/s_w⌉``; slots past the border are empty.

``causal`` empties every slot whose key frame is later than the query frame.
"""

from __future__ import annotations

import functools
import math

import torch

from vidseg_common.errors import ConfigError

PATTERNS = ("grid", "local", "strided")


def check_pattern(pattern: str, params: list[int], shape: list[int]) -> None:
    """Validate ``pattern``, its ``params`` and the clip ``shape = [T, H, W]``; raise ConfigError otherwise."""
    if pattern not in PATTERNS:
        raise ConfigError(f"sparse_st_attn: unknown pattern {pattern!r} (expected one of {', '.join(PATTERNS)})")
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"sparse_st_attn: clip shape must be [T, H, W] with positive sizes, got {list(shape)}")
    expected = {"grid": 0, "local": 1, "strided": 3}[pattern]
    if len(params) != expected:
        raise ConfigError(f"sparse_st_attn: pattern {pattern!r} takes {expected} integer parameter(s), got {list(params)}")
    if pattern == "local" and (params[0] < 1 or params[0] % 2 == 0):
        raise ConfigError(f"sparse_st_attn: local kernel_size must be a positive odd integer, got {params[0]}")
    if pattern == "strided" and min(params) < 1:
        raise ConfigError(f"sparse_st_attn: strides must be positive integers, got {list(params)}")


def num_slots(pattern: str, params: list[int], shape: list[int]) -> int:
    """Number of slots ``Z`` of the pattern's weight layout for a clip ``shape = [T, H, W]``."""
    check_pattern(pattern, params, shape)
    t, h, w = shape
    if pattern == "grid":
        return w + h + t - 2
    if pattern == "local":
        return t * params[0] * params[0]
    s_t, s_h, s_w = params
    return math.ceil(t / s_t) * math.ceil(h / s_h) * math.ceil(w / s_w)


def default_kernel_size(width: int) -> int:
    """Local kernel size: the odd integer nearest below ``√width`` (SSTVOS Table 6: kernel = √(feature width))."""
    return 2 * int(math.sqrt(width) // 2) + 1


def default_stride(width: int) -> int:
    """Strided step ``h ≈ √width`` (SSTVOS §3: ``h ≈ √H``; Table 6 ties it to the feature width)."""
    return max(1, round(math.sqrt(width)))


def _cells(shape: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t, h, w = shape
    return torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")


def _skip_self(slot: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """The kernel's ``m if m < own else m + 1`` index (skips the query's own coordinate)."""
    return torch.where(slot < own, slot, slot + 1)


@functools.lru_cache(maxsize=32)
def _slot_key_index_cpu(pattern: str, params: tuple[int, ...], shape: tuple[int, int, int], causal: bool) -> torch.Tensor:
    t_n, h_n, w_n = shape
    tq, yq, xq = (c.reshape(-1, 1) for c in _cells(list(shape)))  # (S, 1) each
    if pattern == "grid":
        row = torch.arange(w_n).view(1, -1)
        col = _skip_self(torch.arange(h_n - 1).view(1, -1), yq)
        tim = _skip_self(torch.arange(t_n - 1).view(1, -1), tq)
        kt = torch.cat([tq.expand(-1, w_n), tq.expand(-1, h_n - 1), tim], dim=1)
        ky = torch.cat([yq.expand(-1, w_n), col, yq.expand(-1, t_n - 1)], dim=1)
        kx = torch.cat([row.expand(len(tq), -1), xq.expand(-1, h_n - 1), xq.expand(-1, t_n - 1)], dim=1)
    elif pattern == "local":
        r = params[0] // 2
        st, sy, sx = torch.meshgrid(torch.arange(t_n), torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        kt = st.reshape(1, -1).expand(len(tq), -1)
        ky = yq + sy.reshape(1, -1)
        kx = xq + sx.reshape(1, -1)
    else:
        s_t, s_h, s_w = params
        it, iy, ix = torch.meshgrid(
            torch.arange(math.ceil(t_n / s_t)), torch.arange(math.ceil(h_n / s_h)), torch.arange(math.ceil(w_n / s_w)),
            indexing="ij",
        )
        kt = tq % s_t + it.reshape(1, -1) * s_t
        ky = yq % s_h + iy.reshape(1, -1) * s_h
        kx = xq % s_w + ix.reshape(1, -1) * s_w
    valid = (kt >= 0) & (kt < t_n) & (ky >= 0) & (ky < h_n) & (kx >= 0) & (kx < w_n)
    if causal:
        valid &= kt <= tq
    index = (kt * h_n + ky) * w_n + kx
    return torch.where(valid, index, torch.full_like(index, -1)).contiguous()


def slot_key_index(
    pattern: str, params: list[int], shape: list[int], causal: bool = False, device: torch.device | None = None
) -> torch.Tensor:
    """Flat key-cell index of every (query cell, slot) pair.

    Args:
        pattern: ``grid``, ``local`` or ``strided``.
        params: the pattern's integer parameters (see the module docstring).
        shape: ``[T, H, W]``.
        causal: empty the slots that point to later frames.
        device: where to put the table.

    Returns:
        ``(S, Z)`` int64, ``S = T·H·W``; ``-1`` marks an empty slot.
    """
    check_pattern(pattern, params, shape)
    table = _slot_key_index_cpu(pattern, tuple(int(p) for p in params), tuple(int(s) for s in shape), bool(causal))
    return table if device is None else table.to(device)


def connectivity_mask(pattern: str, params: list[int], shape: list[int], causal: bool = False) -> torch.Tensor:
    """Dense boolean connectivity ``M (S, S)``: ``M[p, q]`` iff query cell ``p`` attends to key cell ``q``.

    Written with plain loops over the paper's set definitions (the test oracle); slow, use small clips.
    """
    check_pattern(pattern, params, shape)
    t_n, h_n, w_n = shape
    cells = [(t, y, x) for t in range(t_n) for y in range(h_n) for x in range(w_n)]
    mask = torch.zeros(len(cells), len(cells), dtype=torch.bool)
    for i, (t, y, x) in enumerate(cells):
        for j, (t2, y2, x2) in enumerate(cells):
            if pattern == "grid":
                linked = (t2 == t and (y2 == y or x2 == x)) or (y2 == y and x2 == x)
            elif pattern == "local":
                r = params[0] // 2
                linked = abs(y2 - y) <= r and abs(x2 - x) <= r
            else:
                s_t, s_h, s_w = params
                linked = (t2 - t) % s_t == 0 and (y2 - y) % s_h == 0 and (x2 - x) % s_w == 0
            mask[i, j] = linked and (not causal or t2 <= t)
    return mask
