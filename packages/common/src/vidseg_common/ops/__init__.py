"""Custom ops of the five papers.

Each op family follows the same pattern (see docs/architecture.md, "Ops pattern"): a ``*_reference`` function
with the plain math, a public ``torch.library.custom_op`` named ``vidseg::<op>`` whose default kernel
is a fast vectorised PyTorch implementation, a Triton kernel for CUDA, and an ``nn.Module`` wrapper.
:mod:`vidseg_common.ops.backend` holds the ``VIDSEG_OPS_BACKEND`` switch and the kernel registry every
family registers its reference / torch / Triton kernels with (``register_kernels``; the Triton modules
under ``_triton/`` are named there by string and imported only when selected).

The layers and helpers below are exported lazily (``from vidseg_common.ops import MSDeformAttn``
imports and registers only that family, so importing this package costs nothing). The functional ops
share their module's name, so they are imported from it, like ``torch.nn.functional``:
``from vidseg_common.ops.ms_deform_attn import ms_deform_attn``.

| module (functional op) | paper | exported here |
|---|---|---|
| ``ms_deform_attn`` | SeqFormer (Deformable DETR) | ``MSDeformAttn``, ``ms_deform_attn_reference`` |
| ``st_deform_attn`` | Deformable VisTR | ``STDeformAttn``, ``st_deform_attn_reference`` |
| ``sparse_st_attn``, ``object_affinity`` | SSTVOS | ``sparse_st_attn_reference``, ``pattern_params``, ``object_affinity_reference`` |
| ``windowed_temporal_attn`` | STT | ``windowed_temporal_attn_reference``, ``num_temporal_keys``, ``temporal_window_radii`` |
| ``sparse_conv2d`` | SpVOS | ``TripleSparseConv2d``, ``StaticSparseConv2d``, ``ResidualSparseConv2d``, ``sparse_conv2d_reference`` |
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ms_deform_attn_reference": "ms_deform_attn",
    "MSDeformAttn": "ms_deform_attn_module",
    "st_deform_attn_reference": "st_deform_attn",
    "STDeformAttn": "st_deform_attn_module",
    "sparse_st_attn_reference": "sparse_st_attn",
    "pattern_params": "sparse_st_attn",
    "object_affinity_reference": "object_affinity",
    "windowed_temporal_attn_reference": "windowed_temporal_attn",
    "num_temporal_keys": "windowed_temporal_attn",
    "temporal_window_radii": "windowed_temporal_attn",
    "sparse_conv2d_reference": "sparse_conv2d",
    "TripleSparseConv2d": "triple_sparse_conv",
    "StaticSparseConv2d": "sparse_conv_baselines",
    "ResidualSparseConv2d": "sparse_conv_baselines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
