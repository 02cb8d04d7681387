"""Speed and memory of the sparse attention ops against dense attention, as ratios measured in one run.

Implementations compared (forward pass, float32, batch 1, on the CPU unless CUDA is available):

- ``fast``: the public op (``sparse_st_attn`` grid/local/strided without returned weights;
  ``windowed_temporal_attn``), dispatched as in production (``VIDSEG_OPS_BACKEND`` unset);
- ``reference``: dense attention over every key with the boolean connectivity mask (the tests' oracle
  math; the mask is built once from the slot table, outside the timing);
- ``dense``: plain full attention (no mask): SSTVOS Table 1's "naive attention", STT Table 3's full keys.

Dense baselines process ``--dense-heads`` heads at a time (default 2) so the 3–8 GB score matrices fit on a
shared machine; their memory is therefore a *lower bound* of one-shot dense attention, which makes the
memory ratios conservative. Every (implementation, size) runs in a fresh subprocess with ``--threads``
intra-op threads (default 1: on a loaded 2-core box, 2-thread OpenMP barriers dominate small ops): one
warm-up call, then the peak-RSS counter is reset (``/proc/self/clear_refs``) and ``--repeats`` calls are
timed (best kept); peak memory = peak RSS over the timed calls minus the RSS before them (``psutil``),
i.e. what a call allocates beyond its inputs, as the OS sees it (not a tensor-size estimate).

Targets (issue 5): grid ≥ 50× faster and ≥ 20× less memory than dense masked attention at τ=3, 58×58,
C=128, 8 heads (SSTVOS Table 1); windowed ≥ 50× faster than full attention at T=7, 64×128 (STT Table 3).

Usage: ``python benchmarks/ops_sparse_attn.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GRID_FULL = [(3, 30, 30, 128, 8), (3, 44, 44, 128, 8), (3, 58, 58, 128, 8)]
GRID_QUICK = [(3, 12, 12, 32, 4), (3, 20, 20, 32, 4)]
PATTERN_FULL = [(3, 30, 30, 128, 8)]
PATTERN_QUICK = [(3, 12, 12, 32, 4)]
WINDOW_FULL = [(7, 32, 64, 256, 8), (7, 64, 128, 256, 8)]  # T, h, w, C (d_t/4 of PSP18), heads
WINDOW_QUICK = [(7, 16, 32, 64, 4)]


def _sparse_case(pattern: str, size: tuple[int, ...], impl: str, dense_heads: int):
    import torch

    from vidseg_common.ops.sparse_st_attn import pattern_params, sparse_st_attn
    from vidseg_common.ops.sparse_st_attn_patterns import slot_key_index

    t, h, w, c, heads = size
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, c, t, h, w, generator=gen) for _ in range(3))
    if impl == "fast":
        return lambda: sparse_st_attn(q, k, v, pattern, num_heads=heads)
    s = t * h * w
    mask = None
    if impl == "reference":
        index = slot_key_index(pattern, pattern_params(pattern, w), [t, h, w])
        mask = torch.zeros(s, s + 1, dtype=torch.bool)
        mask.scatter_(1, torch.where(index < 0, s, index), True)
        mask = mask[:, :s].contiguous()
    qh, kh, vh = (x.reshape(heads, c // heads, s) for x in (q, k, v))

    def dense() -> torch.Tensor:
        outs = []
        for i in range(0, heads, dense_heads):
            logits = torch.matmul(qh[i : i + dense_heads].transpose(1, 2), kh[i : i + dense_heads])  # (h, S, S)
            if mask is not None:
                logits.masked_fill_(~mask, float("-inf"))
            outs.append(torch.matmul(vh[i : i + dense_heads], torch.softmax(logits, -1).transpose(1, 2)))
            del logits
        return torch.cat(outs)

    return dense


def _window_case(size: tuple[int, ...], impl: str, dense_heads: int):
    import torch

    from vidseg_common.ops.windowed_temporal_attn import (
        temporal_window_radii,
        window_key_index,
        windowed_temporal_attn,
    )

    t, h, w, c, heads = size
    gen = torch.Generator().manual_seed(0)
    num_q = h * w // 2  # STT keeps the top 50 % of the query positions
    query = torch.randn(1, num_q, c, generator=gen)
    positions = torch.randperm(h * w, generator=gen)[:num_q].view(1, -1)
    key, value = (torch.randn(1, t, c, h, w, generator=gen) for _ in range(2))
    if impl == "fast":
        return lambda: windowed_temporal_attn(query, positions, key, value, start=1, end=5, expansion=1, num_heads=heads)
    mask = None
    if impl == "reference":
        index = window_key_index(positions, temporal_window_radii(t, 1, 5, 1), h, w)[0]
        mask = torch.zeros(num_q, t * h * w + 1, dtype=torch.bool)
        mask.scatter_(1, torch.where(index < 0, t * h * w, index), True)
        mask = mask[:, :-1].contiguous()
    qh = query[0].view(num_q, heads, -1).transpose(0, 1)  # (heads, Q, d)
    kh, vh = (x[0].view(t, heads, -1, h * w).permute(1, 0, 3, 2).reshape(heads, t * h * w, -1) for x in (key, value))
    scale = (c // heads) ** -0.5

    def dense() -> torch.Tensor:
        outs = []
        for i in range(0, heads, dense_heads):
            logits = torch.matmul(qh[i : i + dense_heads], kh[i : i + dense_heads].transpose(1, 2)).mul_(scale)
            if mask is not None:
                logits.masked_fill_(~mask, float("-inf"))
            outs.append(torch.matmul(torch.softmax(logits, -1), vh[i : i + dense_heads]))
            del logits
        return torch.cat(outs)

    return dense


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (``VmHWM``)."""
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _worker(spec: dict) -> dict:
    import psutil
    import torch

    torch.set_grad_enabled(False)
    torch.set_num_threads(spec["threads"])
    size = tuple(spec["size"])
    if spec["op"] == "windowed":
        fn = _window_case(size, spec["impl"], spec["dense_heads"])
    else:
        fn = _sparse_case(spec["op"], size, spec["impl"], spec["dense_heads"])
    fn()  # warm-up: lazy imports, caches, allocator
    reset = _reset_peak_rss()
    before = psutil.Process().memory_info().rss
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    peak = (_peak_rss() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - before
    return {"time_s": min(times), "peak_mb": max(peak, 0) / 2**20}


def _measure(spec: dict) -> dict:
    env = dict(os.environ)
    env.pop("VIDSEG_OPS_BACKEND", None)
    # a fixed mmap threshold makes glibc return every large tensor to the OS on free, so the warm-up call
    # cannot hide the timed calls' peak inside cached heap memory
    env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds, for CI smoke runs)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (best is kept)")
    parser.add_argument("--dense-heads", type=int, default=2, help="heads per chunk in the dense baselines")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads in every measurement")
    parser.add_argument("--ops", default="grid,local,strided,windowed", help="comma-separated subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    plan = {
        "grid": GRID_QUICK if args.quick else GRID_FULL,
        "local": PATTERN_QUICK if args.quick else PATTERN_FULL,
        "strided": PATTERN_QUICK if args.quick else PATTERN_FULL,
        "windowed": WINDOW_QUICK if args.quick else WINDOW_FULL,
    }
    header = f"{'op':9s} {'T,H,W,C,heads':18s} {'impl':9s} {'time ms':>10s} {'peak MB':>9s} {'x time':>8s} {'x mem':>8s}"
    print(header)
    print("-" * len(header))
    for op in args.ops.split(","):
        for size in plan[op]:
            results = {}
            for impl in ("fast", "reference", "dense"):
                repeats = args.repeats if impl == "fast" else max(1, min(args.repeats, 2))
                spec = {"op": op, "size": list(size), "impl": impl, "repeats": repeats, "dense_heads": args.dense_heads, "threads": args.threads}
                results[impl] = res = _measure(spec)
                label = ",".join(map(str, size))
                if "error" in res:
                    print(f"{op:9s} {label:18s} {impl:9s} failed: {res['error']}")
                    continue
                fast = results["fast"]
                x_time = res["time_s"] / fast["time_s"] if "time_s" in fast else float("nan")
                x_mem = res["peak_mb"] / max(fast.get("peak_mb", float("nan")), 1e-3)
                print(f"{op:9s} {label:18s} {impl:9s} {res['time_s'] * 1e3:10.1f} {res['peak_mb']:9.1f} {x_time:8.1f} {x_mem:8.1f}", flush=True)
    print("x time / x mem: the row's time / peak memory divided by the fast op's (dense rows: how many times faster / lighter fast is)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
