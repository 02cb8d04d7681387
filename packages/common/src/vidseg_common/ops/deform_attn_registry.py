"""One registration for both deformable-attention ops (``vidseg::ms_deform_attn``, ``vidseg::st_deform_attn``).

The two ops differ only in the dimension of their sampling points (2-D bilinear levels vs 3-D trilinear
volumes) and in their implementations; the custom-op plumbing is the same and lives here once: the
registration of their kernels with the backend registry of :mod:`vidseg_common.ops.backend` (the one every
op family uses; ``VIDSEG_OPS_BACKEND``: reference / torch / Triton on CUDA), the fake kernel, autograd
(the vector-Jacobian product of the PyTorch path, or of the reference under ``reference``), float32
under autocast (sampling locations in half precision would be off by pixels; Deformable DETR's kernel
had no half support either), and the FLOP formula.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from vidseg_common.ops.backend import get_kernel, register_kernels, select_backend, select_kernel
from vidseg_common.ops.ms_deform_attn_core import check_deform_inputs


def deform_attn_flops(value_shape: Sequence[int], locations_shape: Sequence[int]) -> int:
    """FLOPs of one call: per sampled point and channel, ``2^dims`` corner multiply-adds + 1 attention one.

    Args:
        value_shape: ``(N, S, M, D)``.
        locations_shape: ``(N, Lq, M, L, P, dims)`` with ``dims`` 2 (bilinear) or 3 (trilinear).

    Returns:
        ``2 · (2^dims + 1) · N·Lq·M·L·P·D`` (2 FLOPs per multiply-add): 10 per point-channel in 2-D, 18 in 3-D.
    """
    n, lq, m, n_levels, n_points, dims = locations_shape[:6]
    return 2 * (2**dims + 1) * n * lq * m * n_levels * n_points * value_shape[3]


def register_deform_op(name: str, dims: int, module: str, triton_impl: str) -> torch.library.CustomOpDef:
    """Register ``vidseg::<name>`` with its kernels, fake, autograd, autocast rule and FLOP formula.

    Args:
        name: op name in the ``vidseg`` namespace.
        dims: coordinates per sampling point (2 or 3).
        module: the module defining ``<name>_reference`` (the plain math, the definition) and ``<name>_torch``
            (the vectorised PyTorch path, default kernel on every device); registered by name, so they are
            looked up at call time.
        triton_impl: ``"module:function"`` of the Triton forward, imported by the registry on first
            CUDA/interpreted use.
    """
    register_kernels(
        name,
        reference=f"{module}:{name}_reference",
        torch=f"{module}:{name}_torch",
        triton=triton_impl,
    )

    def run(value: Tensor, spatial_shapes: list[int], sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
        check_deform_inputs(value, spatial_shapes, sampling_locations, attention_weights, dims, name)
        return select_kernel(name, value.device)(value, spatial_shapes, sampling_locations, attention_weights)

    op = torch.library.custom_op(f"vidseg::{name}", run, mutates_args=())
    # CUDA takes the same dispatch: unset/auto VIDSEG_OPS_BACKEND picks the Triton kernel there.
    op.register_kernel("cuda")(run)

    @op.register_fake
    def _fake(value: Tensor, spatial_shapes: list[int], sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
        check_deform_inputs(value, spatial_shapes, sampling_locations, attention_weights, dims, name)
        n, _, m, d = value.shape
        return value.new_empty(n, sampling_locations.shape[1], m * d)

    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        value, spatial_shapes, sampling_locations, attention_weights = inputs
        ctx.save_for_backward(value, sampling_locations, attention_weights)
        ctx.spatial_shapes = spatial_shapes

    def backward(ctx, grad_output: Tensor):  # type: ignore[no-untyped-def]
        value, sampling_locations, attention_weights = ctx.saved_tensors
        shapes = ctx.spatial_shapes
        impl = get_kernel(name, "reference" if select_backend(value.device) == "reference" else "torch")
        _, vjp = torch.func.vjp(lambda v, loc, a: impl(v, shapes, loc, a), value, sampling_locations, attention_weights)
        grad_value, grad_loc, grad_attn = vjp(grad_output.contiguous())
        return grad_value, None, grad_loc, grad_attn

    op.register_autograd(backward, setup_context=setup_context)
    for device_type in ("cpu", "cuda"):
        torch.library.register_autocast(f"vidseg::{name}", device_type, torch.float32)

    @register_flop_formula(getattr(torch.ops.vidseg, name))
    def _flops(value_shape, spatial_shapes, locations_shape, weights_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        return deform_attn_flops(value_shape, locations_shape)

    return op
