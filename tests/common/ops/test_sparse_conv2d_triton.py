"""Triton kernel of vidseg::sparse_conv2d = dense-conv-then-mask reference, on CPU under TRITON_INTERPRET=1.

The interpreter flag is read when ``triton.jit`` decorates the kernel, so the check runs in a fresh
subprocess with ``TRITON_INTERPRET=1`` and ``VIDSEG_OPS_BACKEND=triton`` set before triton is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

SCRIPT = r"""
import json, torch
from vidseg_common.ops.sparse_conv2d import conv_output_size, sparse_conv2d, sparse_conv2d_reference
import vidseg_common.ops._triton.sparse_conv2d as kernel_module

gen = torch.Generator().manual_seed(0)
result = {"kernel_is_interpreted": type(kernel_module._sparse_conv2d_fwd_kernel).__name__}
# (C_in, C_out, H, W, kernel, stride, padding, dilation, density, bias); C_in 40 > BLOCK_CI, C_out 37 > BLOCK_CO
for i, (ci, co, h, w, k, s, p, d, density, with_bias) in enumerate([
    (5, 7, 9, 8, (3, 3), [1, 1], [1, 1], [1, 1], 0.4, True),
    (40, 37, 6, 7, (3, 3), [1, 1], [1, 1], [1, 1], 0.7, False),
    (3, 4, 11, 9, (3, 1), [2, 1], [0, 2], [1, 2], 0.5, True),
    (4, 6, 7, 6, (1, 1), [1, 1], [0, 0], [1, 1], 1.0, True),
    (4, 6, 7, 6, (3, 3), [1, 1], [1, 1], [1, 1], 0.0, True),
]):
    x = torch.randn(2, ci, h, w, generator=gen)
    weight = torch.randn(co, ci, *k, generator=gen)
    bias = torch.randn(co, generator=gen) if with_bias else None
    ho, wo = (conv_output_size((h, w)[a], k[a], s[a], p[a], d[a]) for a in range(2))
    mask = torch.rand(2, ho, wo, generator=gen) < density
    got = sparse_conv2d(x, weight, bias, mask, s, p, d)
    ref = sparse_conv2d_reference(x.double(), weight.double(), None if bias is None else bias.double(), mask, s, p, d)
    result[f"case{i}"] = (got.double() - ref).abs().max().item() / ref.abs().max().clamp_min(1).item()
    result[f"case{i}_zeros_outside"] = bool((got[~mask[:, None].expand_as(got)] == 0).all())
print(json.dumps(result))
"""


def test_triton_kernel_matches_reference_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", VIDSEG_OPS_BACKEND="triton")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("kernel_is_interpreted") == "InterpretedFunction"
    assert len(result) == 10
    for name, value in result.items():
        if name.endswith("zeros_outside"):
            assert value is True, name
        else:
            assert value < 1e-5, (name, value)
