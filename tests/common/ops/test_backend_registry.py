"""One kernel registry for every op family (``vidseg_common.ops.backend``): lazy Triton modules, no import cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidseg_common.ops
from vidseg_common.errors import ConfigError
from vidseg_common.ops import backend

OPS_DIR = Path(vidseg_common.ops.__file__).parent
OP_MODULES = [
    "ms_deform_attn", "st_deform_attn", "sparse_conv2d", "sparse_st_attn", "windowed_temporal_attn", "object_affinity",
]
FAMILIES = {
    "ms_deform_attn": ("reference", "torch", "triton"),
    "st_deform_attn": ("reference", "torch", "triton"),
    "sparse_conv2d": ("reference", "torch", "triton"),
    "sparse_st_attn": ("reference", "torch", "triton"),
    "windowed_temporal_attn": ("reference", "torch", "triton"),
    "indexed_attention": ("torch", "triton"),
    "object_affinity": ("torch",),
}


def test_every_family_registers_its_kernels_and_no_triton_module_is_imported() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {OP_MODULES!r}: importlib.import_module('vidseg_common.ops.' + m)\n"
        "from vidseg_common.ops.backend import registered_ops\n"
        "print(json.dumps({'ops': registered_ops(), 'triton': sorted(m for m in sys.modules if '._triton.' in m)}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert {op: tuple(b) for op, b in seen["ops"].items()} == FAMILIES
    assert seen["triton"] == []


def test_no_op_module_imports_a_triton_module() -> None:
    """The Triton modules are named by string in ``register_kernels``; only they may import the op modules."""
    for path in OPS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("_triton" in name for name in names), f"{path.name} imports {names}"


def test_missing_backend_runs_the_torch_kernel_and_strings_resolve_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import vidseg_common.ops.sparse_conv2d as sc

    monkeypatch.setitem(backend._KERNELS, "test_op", {})
    backend.register_kernels("test_op", torch="vidseg_common.ops.sparse_conv2d:conv_output_size")
    assert backend.get_kernel("test_op", "reference") is sc.conv_output_size
    assert backend.get_kernel("test_op", "triton") is sc.conv_output_size
    monkeypatch.setattr(sc, "conv_output_size", len)
    assert backend.get_kernel("test_op", "torch") is len  # looked up on every selection
    monkeypatch.setenv(backend.ENV_VAR, "reference")
    assert backend.select_kernel("test_op", torch.device("cpu")) is len


def test_registry_errors_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no kernels are registered"):
        backend.get_kernel("no_such_op", "torch")
    monkeypatch.setitem(backend._KERNELS, "test_op", {})
    with pytest.raises(ConfigError, match="module:function"):
        backend.register_kernels("test_op", torch="not a reference")
    backend.register_kernels("test_op", torch=len)
    with pytest.raises(ConfigError, match="unknown backend"):
        backend.get_kernel("test_op", "cuda")  # type: ignore[arg-type]
    monkeypatch.setenv(backend.ENV_VAR, "bogus")
    with pytest.raises(ConfigError, match=backend.ENV_VAR):
        backend.select_kernel("test_op", torch.device("cpu"))
