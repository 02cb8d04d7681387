"""SSTVOS object affinity values (Eq. 4), ``vidseg::object_affinity``.

``A_v(p, o) = max_{q ∈ I_p^o ∪ {0}} A(p, q)``: for every cell ``p`` and object ``o`` (background included,
label 0) the largest attention weight that ``p`` gives to a cell of its connectivity pattern labelled ``o``
in an **earlier frame** (causality, ``docs/reference/vos.md`` §1.5), and 0 when there is none. We read the
``∪ {0}`` of the equation literally, so the result is ``max(0, …)``; with softmax weights (≥ 0) that is the
same as "0 where the set is empty". We take the max over attention *weights* (the paper's "attention score";
the distance/NCC variants of the config are left to the model). Label 255 (VOID) belongs to no object.

Inputs are the weights returned by :func:`vidseg_common.ops.sparse_st_attn.sparse_st_attn` in the pattern's
slot layout. Gradients flow to the maximising slot (``amax`` semantics: ties share the gradient).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.backend import register_kernels, select_kernel
from vidseg_common.ops.sparse_st_attn_patterns import num_slots, slot_key_index


def _check(weights: torch.Tensor, labels: torch.Tensor, num_objects: int, pattern: str, params: list[int]) -> None:
    if weights.dim() != 5 or not weights.is_floating_point():
        raise DataError(f"object_affinity: weights must be a floating (N, Z, T, H, W) tensor, got {weights.dtype} {tuple(weights.shape)}")
    n, z, t, h, w = weights.shape
    if labels.shape != (n, t, h, w) or labels.dtype != torch.int64:
        raise DataError(f"object_affinity: labels must be int64 of shape (N, T, H, W) = {(n, t, h, w)}, got {labels.dtype} {tuple(labels.shape)}")
    if num_objects < 1:
        raise ConfigError(f"object_affinity: num_objects must be >= 1 (background counts), got {num_objects}")
    expected = num_slots(pattern, params, [t, h, w])
    if z != expected:
        raise DataError(f"object_affinity: weights have {z} slots but pattern {pattern!r} {list(params)} has {expected} for T,H,W={t},{h},{w}")
    bad = ((labels < 0) | (labels >= num_objects)) & (labels != VOID_ID)
    if bool(bad.any()):
        raise DataError(f"object_affinity: labels must lie in [0, {num_objects}) or be {VOID_ID} (void), found {int(labels[bad][0])}")


def object_affinity_reference(dense_weights: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """Eq. 4 with plain loops over dense weights (the oracle; small inputs only).

    Args:
        dense_weights: ``(N, S, S)`` attention weights, query cell × key cell.
        mask: ``(S, S)`` bool connectivity of the pattern.
        labels: ``(N, T, H, W)`` int64 object labels (0 = background, 255 = void).
        num_objects: ``O`` (background included).

    Returns:
        ``(N, O, T, H, W)``.
    """
    n, t, h, w = labels.shape
    frame = torch.arange(t).repeat_interleave(h * w).tolist()
    flat = labels.reshape(n, -1).tolist()
    out = torch.zeros(n, num_objects, t * h * w, dtype=dense_weights.dtype)
    for b in range(n):
        for p in range(t * h * w):
            for q in range(t * h * w):
                if mask[p, q] and frame[q] < frame[p] and flat[b][q] != VOID_ID:
                    o = flat[b][q]
                    out[b, o, p] = max(out[b, o, p], dense_weights[b, p, q])
    return out.reshape(n, num_objects, t, h, w).to(dense_weights.device)


def _selections(labels: torch.Tensor, num_objects: int, pattern: str, params: list[int], shape: list[int]):
    """Yield ``(o, sel (N, Z, S) bool)``: slots pointing to an earlier-frame cell labelled ``o``."""
    t, h, w = shape
    index = slot_key_index(pattern, params, shape, False, labels.device).t()  # (Z, S)
    frame = torch.arange(t, device=labels.device).repeat_interleave(h * w)
    earlier = (index >= 0) & (frame[index.clamp_min(0)] < frame.view(1, -1))  # (Z, S)
    slot_labels = labels.reshape(labels.shape[0], -1)[:, index.clamp_min(0)]  # (N, Z, S)
    for o in range(num_objects):
        yield o, earlier & (slot_labels == o)


def _affinity_torch(weights: torch.Tensor, labels: torch.Tensor, num_objects: int, pattern: str, params: list[int]) -> torch.Tensor:
    n, _, t, h, w = weights.shape
    flat = weights.reshape(n, -1, t * h * w)
    zero = flat.new_zeros(())
    out = flat.new_empty(n, num_objects, t * h * w)
    for o, sel in _selections(labels, num_objects, pattern, params, [t, h, w]):
        out[:, o] = torch.where(sel, flat, zero).amax(dim=1)
    return out.reshape(n, num_objects, t, h, w)


def _affinity_backward_torch(
    grad: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor, num_objects: int, pattern: str, params: list[int]
) -> torch.Tensor:
    """Route each ``grad[:, o, p]`` to the selected slot(s) holding the max (shared equally between ties)."""
    n, _, t, h, w = weights.shape
    flat = weights.reshape(n, -1, t * h * w)
    grad = grad.reshape(n, num_objects, 1, t * h * w)
    zero = flat.new_zeros(())
    dweights = torch.zeros_like(flat)
    for o, sel in _selections(labels, num_objects, pattern, params, [t, h, w]):
        masked = torch.where(sel, flat, zero)
        hit = sel & (masked == masked.amax(dim=1, keepdim=True))
        dweights += hit * (grad[:, o] / hit.sum(dim=1, keepdim=True).clamp_min(1))
    return dweights.reshape(weights.shape)


# The PyTorch path serves every backend (the registry runs a family's torch kernel where it has no other).
register_kernels("object_affinity", torch=_affinity_torch)


@torch.library.custom_op("vidseg::object_affinity", mutates_args=())
def _object_affinity_op(weights: torch.Tensor, labels: torch.Tensor, num_objects: int, pattern: str, params: list[int]) -> torch.Tensor:
    _check(weights, labels, num_objects, pattern, params)
    kernel = select_kernel("object_affinity", weights.device)  # validates VIDSEG_OPS_BACKEND
    return kernel(weights.contiguous(), labels.contiguous(), num_objects, pattern, params)


@_object_affinity_op.register_fake
def _object_affinity_fake(weights, labels, num_objects, pattern, params):
    n, _, t, h, w = weights.shape
    return weights.new_empty(n, num_objects, t, h, w)


@torch.library.custom_op("vidseg::object_affinity_backward", mutates_args=())
def _object_affinity_backward_op(
    grad: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor, num_objects: int, pattern: str, params: list[int]
) -> torch.Tensor:
    return _affinity_backward_torch(grad.contiguous(), weights.contiguous(), labels.contiguous(), num_objects, pattern, params)


@_object_affinity_backward_op.register_fake
def _object_affinity_backward_fake(grad, weights, labels, num_objects, pattern, params):
    return weights.new_empty(weights.shape)


def _setup_context(ctx, inputs, output) -> None:
    weights, labels, num_objects, pattern, params = inputs
    ctx.save_for_backward(weights, labels)
    ctx.config = (num_objects, pattern, list(params))


def _backward(ctx, grad):
    weights, labels = ctx.saved_tensors
    return _object_affinity_backward_op(grad, weights, labels, *ctx.config), None, None, None, None


_object_affinity_op.register_autograd(_backward, setup_context=_setup_context)


@register_flop_formula([torch.ops.vidseg.object_affinity, torch.ops.vidseg.object_affinity_backward])
def _object_affinity_flops(*args, out_shape=None, **kwargs) -> int:
    """0: masked maxima and their gradient routing are comparisons/selections, no multiply-adds — the
    ``FlopCounterMode`` convention, which counts no element-wise or reduction op either. Declared so that
    ``benchmark`` does not list the op as uncounted."""
    return 0


def object_affinity(
    weights: torch.Tensor, labels: torch.Tensor, num_objects: int, pattern: str, params: list[int]
) -> torch.Tensor:
    """Object affinity values of Eq. 4.

    Args:
        weights: ``(B, M, Z, T, H, W)`` (per head) or ``(B, Z, T, H, W)`` attention weights in the slot layout
            of ``pattern`` (as returned by ``sparse_st_attn(..., return_weights=True)``).
        labels: ``(B, T, H, W)`` int64 object labels per cell (0 = background, 1..O−1 objects, 255 void).
        num_objects: ``O``, background included.
        pattern, params: the pattern the weights come from (``grid``/``local``/``strided`` and its integer
            parameters, see :func:`vidseg_common.ops.sparse_st_attn.pattern_params`).

    Returns:
        ``(B, M, O, T, H, W)`` (or ``(B, O, T, H, W)`` for 5-d weights). The decoder keeps the last frame.
    """
    if weights.dim() == 6:
        b, m = weights.shape[:2]
        if labels.dim() != 4 or labels.shape[0] != b:
            raise DataError(f"object_affinity: labels must be (B, T, H, W) with B={b}, got {tuple(labels.shape)}")
        out = _object_affinity_op(weights.flatten(0, 1), labels.repeat_interleave(m, dim=0), num_objects, pattern, list(params))
        return out.reshape(b, m, *out.shape[1:])
    return _object_affinity_op(weights, labels, num_objects, pattern, list(params))

