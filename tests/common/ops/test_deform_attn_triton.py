"""The Triton deformable-attention kernels (``ms_deform_attn``, ``st_deform_attn``) equal the reference,
run on CPU by the Triton interpreter, and compile for sm_90.

``TRITON_INTERPRET=1`` is read when ``@triton.jit`` decorates the kernel, so the checks run in a fresh
subprocess whose environment sets it before anything imports triton.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

CHILD = textwrap.dedent(
    """
    import torch
    from vidseg_common.ops.__OP__ import __OP__ as op, __OP___reference as reference
    from vidseg_common.ops._triton.__OP__ import __OP___triton as op_triton

    gen = torch.Generator().manual_seed(0)
    shapes = __SHAPES__
    n, m, d, lq, n_levels, p = 1, 2, 5, 3, 3, 2
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        value = torch.rand(n, __POSITIONS__, m, d, generator=gen, dtype=torch.float64).to(dtype) + 0.1
        loc = (torch.rand(n, lq, m, n_levels, p, __DIMS__, generator=gen, dtype=torch.float64) * 1.8 - 0.4).to(dtype)
        loc[:, 0, :, 0, 0] = 3e9  # int32-overflowing pixel coordinates read zeros
        loc[:, -1, :, -1, -1] = -5e9
        attn = torch.rand(n, lq, m, n_levels, p, generator=gen, dtype=torch.float64).to(dtype)
        ref = reference(value.double(), shapes, loc.double(), attn.double())
        out = op_triton(value, shapes, loc, attn)
        assert out.dtype == dtype and out.shape == (n, lq, m * d)
        torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol)
    # non-contiguous inputs (documented silent .contiguous()) and the public op under VIDSEG_OPS_BACKEND=triton
    value_nc = value.transpose(2, 3).contiguous().transpose(2, 3)
    out = op(value_nc, shapes, loc, attn)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    loc_g = loc.double().requires_grad_()
    op(value.double(), shapes, loc_g, attn.double()).sum().backward()
    assert loc_g.grad is not None and loc_g.grad.abs().sum() > 0
    empty = op_triton(value, shapes, loc[:, :0], attn[:, :0])
    assert empty.shape == (n, 0, m * d)
    print("TRITON-OK")
    """
)


# op family → (flat spatial shapes, value positions Σ sizes, coordinates per point)
FAMILIES = {
    "ms_deform_attn": ("[6, 4, 1, 1, 3, 2]", 6 * 4 + 1 + 3 * 2, 2),
    "st_deform_attn": ("[3, 4, 5, 1, 1, 1, 2, 3, 2]", 3 * 4 * 5 + 1 + 2 * 3 * 2, 3),
}


def _child(template: str, op: str) -> str:
    shapes, positions, dims = FAMILIES[op]
    return (template.replace("__OP__", op).replace("__SHAPES__", shapes)
            .replace("__POSITIONS__", str(positions)).replace("__DIMS__", str(dims)))


@pytest.mark.parametrize("op", sorted(FAMILIES))
def test_triton_kernel_matches_reference_under_interpreter(op: str) -> None:
    env = dict(os.environ, TRITON_INTERPRET="1", VIDSEG_OPS_BACKEND="triton")
    result = subprocess.run(
        [sys.executable, "-c", _child(CHILD, op)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "TRITON-OK" in result.stdout, result.stderr[-3000:]


COMPILE_CHILD = textwrap.dedent(
    """
    from triton.backends import backends
    if "nvidia" not in backends:
        print("NO-NVIDIA-BACKEND")
        raise SystemExit(0)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from vidseg_common.ops._triton.__OP__ import ___OP___fwd_kernel as kernel

    ints = ("n_positions", "n_queries", "head_dim", "n_levels", "n_points")
    for fp, fp64 in (("fp32", False), ("fp64", True), ("bf16", False)):
        signature = {"shapes_ptr": "*i32", "starts_ptr": "*i64", **{k: "i32" for k in ints}}
        signature.update({k: f"*{fp}" for k in ("value_ptr", "loc_ptr", "attn_ptr", "out_ptr")})
        signature.update({"n_heads": "constexpr", "BLOCK_D": "constexpr", "FP64": "constexpr"})
        order = list(kernel.arg_names)
        source = ASTSource(kernel, signature={k: signature[k] for k in order}, constexprs={"n_heads": 8, "BLOCK_D": 64, "FP64": fp64})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32))
        assert "cubin" in compiled.asm
    print("COMPILE-OK")
    """
)


@pytest.mark.parametrize("op", sorted(FAMILIES))
def test_triton_kernel_compiles_for_sm90(op: str, tmp_path) -> None:
    """The real (not interpreted) kernel compiles to a CUDA sm_90 cubin; no GPU is needed for that."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _child(COMPILE_CHILD, op)], env=env, capture_output=True, text=True, timeout=300
    )
    if "NO-NVIDIA-BACKEND" in result.stdout:
        pytest.skip("triton has no CUDA backend here")
    assert result.returncode == 0 and "COMPILE-OK" in result.stdout, result.stderr[-3000:]
