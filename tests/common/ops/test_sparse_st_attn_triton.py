"""Triton kernel of the sparse attention ops = dense masked reference, run on CPU under TRITON_INTERPRET=1.

The interpreter flag is read when ``triton.jit`` decorates the kernel, so the check runs in a fresh
subprocess with ``TRITON_INTERPRET=1`` and ``VIDSEG_OPS_BACKEND=triton`` set before anything imports triton.
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
from vidseg_common.ops.sparse_st_attn import _sparse_st_attn_op, sparse_st_attn_reference
from vidseg_common.ops.sparse_st_attn_patterns import slot_key_index
from vidseg_common.ops.windowed_temporal_attn import (
    _windowed_temporal_attn_op, windowed_temporal_attn_reference, window_key_index)
import vidseg_common.ops._triton.sparse_st_attn as kernel_module

gen = torch.Generator().manual_seed(0)
errors = {"kernel_is_interpreted": type(kernel_module._indexed_attn_fwd_kernel).__name__}
for pattern, params, causal in [("grid", [], True), ("grid", [], False), ("local", [3], False), ("strided", [1, 2, 2], True)]:
    q, k = (torch.randn(2, 5, 3, 3, 4, generator=gen) for _ in range(2))
    v = torch.randn(2, 3, 3, 3, 4, generator=gen)
    out, weights = _sparse_st_attn_op(q, k, v, pattern, params, causal, 0.8)
    ref, dense = sparse_st_attn_reference(q.double(), k.double(), v.double(), pattern, params, causal, 0.8)
    index = slot_key_index(pattern, params, [3, 3, 4], causal)
    ref_w = dense.gather(-1, index.clamp_min(0).expand(2, -1, -1)).masked_fill(index < 0, 0).transpose(1, 2)
    errors[f"{pattern}-{causal}"] = max((out.double() - ref).abs().max().item(),
                                        (weights.double().flatten(2) - ref_w).abs().max().item())
query = torch.randn(2, 4, 6, generator=gen)
key = torch.randn(2, 3, 6, 4, 5, generator=gen)
value = torch.randn(2, 3, 2, 4, 5, generator=gen)
positions = torch.tensor([[0, 7, 19, 11], [3, 4, 5, 16]])
out, weights = _windowed_temporal_attn_op(query, positions, key, value, [2, 1, 0], 0.5)
ref, dense = windowed_temporal_attn_reference(query.double(), positions, key.double(), value.double(), [2, 1, 0], 0.5)
index = window_key_index(positions, [2, 1, 0], 4, 5)
ref_w = dense.gather(-1, index.clamp_min(0)).masked_fill(index < 0, 0)
errors["windowed"] = max((out.double() - ref).abs().max().item(), (weights.double() - ref_w).abs().max().item())
print(json.dumps(errors))
"""


def test_triton_kernel_matches_reference_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", VIDSEG_OPS_BACKEND="triton")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = json.loads(proc.stdout.strip().splitlines()[-1])
    assert errors.pop("kernel_is_interpreted") == "InterpretedFunction"
    assert set(errors) == {"grid-True", "grid-False", "local-False", "strided-True", "windowed"}
    for name, err in errors.items():
        assert err < 1e-5, (name, err)
