"""Custom ops of the five papers.

Each op family follows the same pattern (see DESIGN.md, "Ops pattern"): a ``*_reference`` function
with the plain math, a public ``torch.library.custom_op`` named ``vidseg::<op>`` whose default kernel
is a fast vectorised PyTorch implementation, a Triton kernel registered for CUDA, and an
``nn.Module`` wrapper. :mod:`vidseg_common.ops.backend` holds the ``VIDSEG_OPS_BACKEND`` switch.
"""
