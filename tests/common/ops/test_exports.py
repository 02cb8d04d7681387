"""``vidseg_common.ops`` exports every public op lazily (importing the package registers nothing)."""

from __future__ import annotations

import subprocess
import sys

import torch

import vidseg_common.ops as ops


def test_every_export_resolves_to_the_public_object() -> None:
    for name in ops.__all__:
        value = getattr(ops, name)
        assert callable(value), name
        assert not isinstance(value, type(ops)), f"{name} resolved to a module"
    assert issubclass(ops.MSDeformAttn, torch.nn.Module) and issubclass(ops.TripleSparseConv2d, torch.nn.Module)


def test_package_import_is_lazy() -> None:
    code = "import sys, vidseg_common.ops; print(any(m.startswith('vidseg_common.ops.') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
