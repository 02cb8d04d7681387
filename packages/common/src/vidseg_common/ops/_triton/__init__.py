"""Triton kernels, one module per op family.

Each module is named in its family's :func:`vidseg_common.ops.backend.register_kernels` call as a
``"module:function"`` string and imported by the registry only when the ``triton`` backend is selected (a
CUDA or interpreted launch); no op module imports these modules.
"""
