"""Parameter count, FLOPs and throughput of a model at a given input size.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add, the
convention of fvcore ×2). Our custom ops declare theirs with
``torch.utils.flop_counter.register_flop_formula(torch.ops.vidseg.<op>)`` next to their definition,
so they are counted like built-in ops; an op without a formula counts as 0 and is listed in
``BenchmarkResult.uncounted_ops``. Throughput is measured after warm-up, synchronising CUDA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class BenchmarkResult:
    """What ``vidseg-<paper> benchmark`` reports (also logged to MLflow as ``benchmark/*`` metrics)."""

    params: int
    trainable_params: int
    flops: int
    clips_per_s: float
    frames_per_s: float
    ms_per_clip: float
    batch_size: int
    num_frames: int
    height: int
    width: int
    device: str
    uncounted_ops: list[str] = field(default_factory=list)

    def as_metrics(self) -> dict[str, float]:
        return {
            "benchmark/params": float(self.params),
            "benchmark/gflops": self.flops / 1e9,
            "benchmark/clips_per_s": self.clips_per_s,
            "benchmark/fps": self.frames_per_s,
            "benchmark/ms_per_clip": self.ms_per_clip,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class _CustomOpRecorder(TorchDispatchMode):
    """Records the custom (non-aten) ops called, to report those without a FLOP formula."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[Any] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.namespace not in ("aten", "prim", "prims"):
            self.ops.add(func._overloadpacket)
        return func(*args, **(kwargs or {}))


def count_flops(fn: Callable[..., Any], inputs: Sequence[Any]) -> tuple[int, list[str]]:
    """FLOPs of one call ``fn(*inputs)`` (no grad), and the custom ops that have no FLOP formula.

    Attention is counted on torch's math path: the fused CPU kernels
    (``_scaled_dot_product_flash_attention_for_cpu``, ``nn.MultiheadAttention``'s
    ``_native_multi_head_attention`` fast path) have no FLOP formula and would count as 0 without being
    reported, so while counting, SDPA is restricted to the math backend (its matmuls are counted) and the
    MHA fast path is off. Throughput is measured separately, on the fast kernels.
    """
    counter = FlopCounterMode(display=False)
    recorder = _CustomOpRecorder()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]), counter, recorder:
            fn(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    counted = set(counter.flop_registry)
    uncounted = sorted(str(op) for op in recorder.ops if op not in counted)
    return int(counter.get_total_flops()), uncounted


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_throughput(
    fn: Callable[..., Any], inputs: Sequence[Any], device: torch.device, warmup: int = 3, iters: int = 10
) -> float:
    """Mean seconds per call of ``fn(*inputs)`` over ``iters`` calls after ``warmup`` calls (no grad)."""
    if iters < 1 or warmup < 0:
        raise ValueError("iters must be ≥ 1 and warmup ≥ 0")
    with torch.no_grad():
        for _ in range(warmup):
            fn(*inputs)
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            fn(*inputs)
        _synchronize(device)
    return (time.perf_counter() - start) / iters


def benchmark_module(
    module: nn.Module,
    *,
    batch_size: int,
    num_frames: int,
    height: int,
    width: int,
    warmup: int = 3,
    iters: int = 10,
) -> BenchmarkResult:
    """Benchmark a :class:`~vidseg_common.engine.module.VidSegModule`-like module in eval mode.

    The module must provide ``example_inputs(batch_size, num_frames, height, width)`` and
    ``benchmark_forward(*inputs)``.
    """
    module.eval()
    device = next(module.parameters()).device
    inputs = module.example_inputs(batch_size, num_frames, height, width)
    flops, uncounted = count_flops(module.benchmark_forward, inputs)
    seconds = measure_throughput(module.benchmark_forward, inputs, device, warmup=warmup, iters=iters)
    clips_per_s = batch_size / seconds
    return BenchmarkResult(
        params=count_parameters(module),
        trainable_params=count_parameters(module, trainable_only=True),
        flops=flops,
        clips_per_s=clips_per_s,
        frames_per_s=clips_per_s * num_frames,
        ms_per_clip=1000.0 * seconds / batch_size,
        batch_size=batch_size,
        num_frames=num_frames,
        height=height,
        width=width,
        device=str(device),
        uncounted_ops=uncounted,
    )
