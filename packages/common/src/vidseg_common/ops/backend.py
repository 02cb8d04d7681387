"""The ``VIDSEG_OPS_BACKEND`` switch shared by every op family.

``VIDSEG_OPS_BACKEND`` (read at call time, never at import time) forces one implementation:

- ``reference``: the plain-math ``*_reference`` functions, on every device (debugging, A/B parity);
- ``torch``: the vectorised PyTorch path, on every device;
- ``triton``: the Triton kernels (CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``);
- unset / ``auto``: Triton on CUDA when ``triton`` imports, the PyTorch path otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Literal

import torch

from vidseg_common.errors import ConfigError

Backend = Literal["reference", "torch", "triton"]
ENV_VAR = "VIDSEG_OPS_BACKEND"
_CHOICES = ("auto", "reference", "torch", "triton")


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
