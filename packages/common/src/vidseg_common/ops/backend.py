"""The ``VIDSEG_OPS_BACKEND`` switch and the kernel registry shared by every op family.

``VIDSEG_OPS_BACKEND`` (read at call time, never at import time) forces one implementation:

- ``reference``: the plain-math ``*_reference`` functions, on every device (debugging, A/B parity);
- ``torch``: the vectorised PyTorch path, on every device;
- ``triton``: the Triton kernels (CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``);
- unset / ``auto``: Triton on CUDA when ``triton`` imports, the PyTorch path otherwise.

Every op family registers its implementations once, by name, with :func:`register_kernels` and runs the
one :func:`select_kernel` returns::

    register_kernels(
        "sparse_conv2d",
        reference=sparse_conv2d_reference,
        torch=sparse_conv2d_torch,
        triton="vidseg_common.ops._triton.sparse_conv2d:sparse_conv2d_triton",
    )
    out = select_kernel("sparse_conv2d", x.device)(x, weight, ...)

A kernel is a callable or a ``"package.module:function"`` string. Strings are resolved when the kernel is
selected (the module is imported on first use, then found in ``sys.modules``), so an op module never
imports its Triton module (which needs the optional ``triton`` package and may import the op module for
its helpers: no import cycle), and a function replaced on its module (``monkeypatch.setattr``) is picked up.
A backend a family registers no kernel for runs its ``torch`` kernel.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections.abc import Callable
from typing import Any, Literal

import torch

from vidseg_common.errors import ConfigError

__all__ = [
    "ENV_VAR",
    "Backend",
    "KernelRef",
    "get_kernel",
    "register_kernels",
    "registered_ops",
    "requested_backend",
    "select_backend",
    "select_kernel",
    "triton_available",
    "triton_interpret",
]

Backend = Literal["reference", "torch", "triton"]
ENV_VAR = "VIDSEG_OPS_BACKEND"
_CHOICES = ("auto", "reference", "torch", "triton")
BACKENDS: tuple[Backend, ...] = ("reference", "torch", "triton")

KernelRef = Callable[..., Any] | str
"""A kernel: a callable, or ``"package.module:function"`` imported when first selected."""

_KERNELS: dict[str, dict[str, KernelRef]] = {}


def requested_backend() -> str:
    """The value of ``VIDSEG_OPS_BACKEND`` (``auto`` when unset), validated."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise ConfigError(f"{ENV_VAR}={value!r} is not one of {', '.join(_CHOICES)}")
    return value


@functools.cache
def triton_available() -> bool:
    """True when the ``triton`` package can be imported (it is an optional extra)."""
    return importlib.util.find_spec("triton") is not None


def triton_interpret() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1``, used by tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def select_backend(device: torch.device) -> Backend:
    """The implementation to run for tensors on ``device``, honouring ``VIDSEG_OPS_BACKEND``."""
    requested = requested_backend()
    if requested == "reference" or requested == "torch":
        return requested  # type: ignore[return-value]
    if requested == "triton":
        if not triton_available():
            raise ConfigError(f"{ENV_VAR}=triton but the 'triton' package is not installed (pip install vidseg-common[triton])")
        if device.type != "cuda" and not triton_interpret():
            raise ConfigError(f"{ENV_VAR}=triton needs CUDA tensors or TRITON_INTERPRET=1 (got {device.type} tensors)")
        return "triton"
    if device.type == "cuda" and triton_available():
        return "triton"
    return "torch"


def register_kernels(
    op: str,
    *,
    torch: KernelRef,
    reference: KernelRef | None = None,
    triton: KernelRef | None = None,
) -> None:
    """Register the implementations of the op family ``op`` (registering ``op`` again replaces them).

    Args:
        op: family name (the ``vidseg::<op>`` custom op's name by convention).
        torch: the vectorised PyTorch kernel; also runs for the backends given no kernel.
        reference: the plain-math kernel (``VIDSEG_OPS_BACKEND=reference``).
        triton: the Triton kernel, normally a ``"module:function"`` string so that it is imported only
            when selected.
    """
    kernels = {"torch": torch, "reference": reference, "triton": triton}
    for backend, kernel in kernels.items():
        if kernel is not None and not callable(kernel) and not (isinstance(kernel, str) and kernel.count(":") == 1):
            raise ConfigError(f"register_kernels({op!r}): the {backend} kernel must be a callable or 'module:function', got {kernel!r}")
    _KERNELS[op] = {backend: kernel for backend, kernel in kernels.items() if kernel is not None}


def registered_ops() -> dict[str, tuple[str, ...]]:
    """``{op family: backends with their own kernel}`` of the families registered so far (imported ones)."""
    return {op: tuple(b for b in BACKENDS if b in kernels) for op, kernels in sorted(_KERNELS.items())}


def _resolve(kernel: KernelRef) -> Callable[..., Any]:
    if callable(kernel):
        return kernel
    module, _, name = kernel.partition(":")
    return getattr(importlib.import_module(module), name)


def get_kernel(op: str, backend: Backend) -> Callable[..., Any]:
    """The ``backend`` kernel of ``op`` (its ``torch`` kernel when it registered none for ``backend``)."""
    try:
        kernels = _KERNELS[op]
    except KeyError:
        raise ConfigError(f"no kernels are registered for op {op!r} (registered: {', '.join(sorted(_KERNELS))})") from None
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    return _resolve(kernels.get(backend, kernels["torch"]))


def select_kernel(op: str, device: torch.device) -> Callable[..., Any]:
    """The kernel of ``op`` for tensors on ``device``: :func:`get_kernel` of :func:`select_backend`."""
    return get_kernel(op, select_backend(device))
