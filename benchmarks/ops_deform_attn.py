"""Time and peak memory of the deformable-attention ops vs their reference and vs dense attention (CPU).

Run: ``python benchmarks/ops_deform_attn.py [--quick] [--repeats R] [--threads N]`` (defaults: 3 repeats, 1 thread).

Two families, every row an encoder self-attention (every position is a query, ``Lq = S``), batch 1:

- ``st_deform_attn`` (Deformable VisTR: C=384, M=8 heads, K=32 points, one level of ``T×H×W``):
  ``fast`` (the op's PyTorch path: one ``embedding_bag``), ``grid_sample`` (a 5-D ``F.grid_sample`` per
  level, the direct formulation), ``reference`` (the eight-corner definition), and dense attention over all
  ``T·H·W`` tokens: ``dense`` (``softmax(QKᵀ/√d)·V`` materialised, as VisTR's ``nn.MultiheadAttention``
  computes it) and ``sdpa`` (``F.scaled_dot_product_attention``, PyTorch's fused CPU kernel).
  The issue's targets: time linear in ``T·H·W`` (log-log slope ≤ 1.1) and ≥ 20× faster than dense at
  T=36, 10×17 tokens per frame (Deformable VisTR Table 1).
- ``ms_deform_attn`` (Deformable DETR encoder: C=256, M=8, L=4 levels at strides 8–64, P=4): ``fast``,
  ``grid_sample`` (Deformable DETR's ``ms_deform_attn_core_pytorch``), ``reference``, ``dense``, ``sdpa``.

Sampling locations are those of an encoder (each position samples around itself, Gaussian offsets of 2
pixels and 1 frame), not uniform over the map: the gathers' memory locality depends on it.
Only the attention cores are timed (the linear projections are the same work for every variant of a layer).
Memory: each (case, implementation) runs in a fresh subprocess; the figure is the process's peak resident
set (``ru_maxrss``) minus its resident set just before the first call, i.e. what the call allocates on top of
its inputs (output included). A "<" marks a peak hidden below the interpreter's import-time peak. Times are
the minimum of ``--repeats`` calls after that first call, in the same subprocess (the minimum is the figure
least disturbed by other processes on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

ST_SIZES = [(6, 10, 17), (12, 10, 17), (24, 10, 17), (36, 10, 17), (36, 20, 34)]
ST_SIZES_QUICK = [(2, 10, 17), (8, 10, 17)]
MS_IMAGES = [(256, 320), (512, 640)]  # input image sizes; levels at strides 8, 16, 32, 64
MS_IMAGES_QUICK = [(128, 160)]
DENSE_MAX_TOKENS = 8000  # materialised dense attention at 8 heads: 8·S²·4 B ≈ 2 GB at S = 8000
REFERENCE_MAX_TOKENS = 8000
TARGET_CASE = (36, 10, 17)
OFFSET_STD_PX = 2.0  # spread of the sampling points around the query, in pixels of each level
OFFSET_STD_FRAMES = 1.0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker(spec: dict) -> dict:
    """Build one case's inputs, run it once for peak memory, then time it. Runs in a fresh process."""
    import torch
    import torch.nn.functional as F

    from vidseg_common.ops.ms_deform_attn import ms_deform_attn_reference, ms_deform_attn_torch
    from vidseg_common.ops.st_deform_attn import st_deform_attn_reference, st_deform_attn_torch

    torch.manual_seed(0)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    heads, head_dim, points, impl = spec["heads"], spec["head_dim"], spec["points"], spec["impl"]
    dims = 3 if spec["op"] == "st" else 2
    shapes = spec["shapes"]
    n_levels = len(shapes) // dims
    sizes = [math.prod(shapes[dims * i : dims * i + dims]) for i in range(n_levels)]
    s = sum(sizes)
    if impl in ("dense", "sdpa"):
        q, k, v = (torch.randn(1, heads, s, head_dim) for _ in range(3))
        if impl == "sdpa":
            fn = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
        else:
            fn = lambda: (q @ k.transpose(-1, -2) * head_dim**-0.5).softmax(-1) @ v  # noqa: E731
    else:
        value = torch.randn(1, s, heads, head_dim)
        loc = _encoder_locations(shapes, dims, heads, points)
        attn = (
            torch.rand(1, s, heads, n_levels, points)
            .flatten(-2)
            .softmax(-1)
            .view(1, s, heads, n_levels, points)
        )
        fns = {
            ("st", "fast"): st_deform_attn_torch,
            ("st", "reference"): st_deform_attn_reference,
            ("st", "grid_sample"): _st_grid_sample,
            ("ms", "fast"): ms_deform_attn_torch,
            ("ms", "reference"): ms_deform_attn_reference,
            ("ms", "grid_sample"): _ms_grid_sample,
        }
        op = fns[(spec["op"], impl)]
        fn = lambda: op(value, shapes, loc, attn)  # noqa: E731
    with torch.no_grad():
        rss0, peak0 = _rss_bytes(), _maxrss_bytes()
        out = fn()
        peak1 = _maxrss_bytes()
        del out
        times = []
        for _ in range(spec["repeats"]):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return {"time_s": min(times), "peak_bytes": peak1 - rss0, "hidden": peak1 <= peak0}


def _encoder_locations(shapes, dims, heads, points):  # type: ignore[no-untyped-def]
    """Sampling locations of an encoder: each position queries around itself (its own normalised centre,
    on every level) with Gaussian offsets of ``OFFSET_STD_PX`` pixels (and ``OFFSET_STD_FRAMES`` frames).

    Returns ``(1, S, M, L, P, dims)`` in ``(x, y[, t])`` order.
    """
    import torch

    n_levels = len(shapes) // dims
    refs = []
    for lvl in range(n_levels):
        extents = shapes[dims * lvl : dims * lvl + dims]  # slowest axis first
        axes = [(torch.arange(e, dtype=torch.float32) + 0.5) / e for e in extents]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).flip(-1)  # (..., dims) x first
        refs.append(grid.reshape(-1, dims))
    ref = torch.cat(refs)  # (S, dims)
    std = []
    for lvl in range(n_levels):
        extents = list(reversed(shapes[dims * lvl : dims * lvl + dims]))  # x first
        std.append([OFFSET_STD_PX / e for e in extents[:2]] + [OFFSET_STD_FRAMES / e for e in extents[2:]])
    std_t = torch.tensor(std)  # (L, dims)
    noise = torch.randn(1, ref.shape[0], heads, n_levels, points, dims)
    return ref[None, :, None, None, None, :] + noise * std_t[:, None, :]


def _ms_grid_sample(value, shapes, loc, attn):  # type: ignore[no-untyped-def]
    """Deformable DETR's ``ms_deform_attn_core_pytorch`` (baseline): one 2-D grid_sample per level."""
    import torch
    import torch.nn.functional as F

    n, _, m, d = value.shape
    lq, n_levels, p = loc.shape[1], loc.shape[3], loc.shape[4]
    sizes = [shapes[2 * i] * shapes[2 * i + 1] for i in range(n_levels)]
    sampled = []
    for lvl, value_l in enumerate(value.split(sizes, dim=1)):
        v = value_l.flatten(2).transpose(1, 2).reshape(n * m, d, shapes[2 * lvl], shapes[2 * lvl + 1])
        g = (2 * loc[:, :, :, lvl] - 1).transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    a = attn.transpose(1, 2).reshape(n * m, 1, lq, n_levels * p)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * a).sum(-1)
    return out.view(n, m * d, lq).transpose(1, 2).contiguous()


def _st_grid_sample(value, shapes, loc, attn):  # type: ignore[no-untyped-def]
    """Direct formulation (baseline): one 5-D (trilinear) grid_sample per level."""
    import torch
    import torch.nn.functional as F

    n, _, m, d = value.shape
    lq, n_levels, k = loc.shape[1], loc.shape[3], loc.shape[4]
    sizes = [shapes[3 * i] * shapes[3 * i + 1] * shapes[3 * i + 2] for i in range(n_levels)]
    sampled = []
    for lvl, value_l in enumerate(value.split(sizes, dim=1)):
        v = value_l.permute(0, 2, 3, 1).reshape(n * m, d, *shapes[3 * lvl : 3 * lvl + 3])
        g = (2 * loc[:, :, :, lvl] - 1).transpose(1, 2).reshape(n * m, 1, lq, k, 3)
        sampled.append(
            F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)[:, :, 0]
        )
    a = attn.transpose(1, 2).reshape(n * m, 1, lq, n_levels * k)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * a).sum(-1)
    return out.view(n, m * d, lq).transpose(1, 2).contiguous()


def _run_case(spec: dict) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(
            f"  [{spec['op']} {spec['impl']} {spec['shapes']}] failed: {proc.stderr.strip()[-300:]}",
            file=sys.stderr,
        )
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_mem(res: dict) -> str:
    mb = res["peak_bytes"] / 2**20
    return f"<{max(mb, 0):.0f}" if res["hidden"] else f"{mb:.0f}"


def _print_rows(title: str, label: str, rows: list[tuple[str, int, str, dict]]) -> None:
    print(f"\n{title}")
    print(
        f"{label:>14} {'S':>6} {'impl':>12} {'time ms':>10} {'peak MB':>9} {'time/fast':>10} {'mem/fast':>9}"
    )
    fast = {case: res for case, _, impl, res in rows if impl == "fast"}
    for case, s, impl, res in rows:
        base = fast.get(case)
        t_ratio = res["time_s"] / base["time_s"] if base else float("nan")
        m_ratio = res["peak_bytes"] / base["peak_bytes"] if base and base["peak_bytes"] > 0 else float("nan")
        print(
            f"{case:>14} {s:>6} {impl:>12} {res['time_s'] * 1e3:>10.1f} {_fmt_mem(res):>9} {t_ratio:>10.2f} {m_ratio:>9.2f}"
        )


def _slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the tables; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per case (the minimum is reported)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: reproducible on a shared machine; 0 = torch's default)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0
    repeats = args.repeats
    common = {"repeats": repeats, "threads": args.threads}

    st_rows, st_fast = [], {}
    for t, h, w in ST_SIZES_QUICK if args.quick else ST_SIZES:
        s = t * h * w
        impls = ["fast", "grid_sample"] + (["reference"] if s <= REFERENCE_MAX_TOKENS else [])
        impls += ["dense", "sdpa"] if s <= DENSE_MAX_TOKENS else []
        for impl in impls:
            spec = {
                "op": "st",
                "impl": impl,
                "shapes": [t, h, w],
                "heads": 8,
                "head_dim": 48,
                "points": 32,
                **common,
            }
            res = _run_case(spec)
            if res is not None:
                st_rows.append((f"{t}x{h}x{w}", s, impl, res))
                if impl == "fast":
                    st_fast[s] = res["time_s"]
    _print_rows("st_deform_attn (C=384, M=8, K=32, 1 level; Lq = S = T·H·W)", "T x H x W", st_rows)

    ms_rows = []
    for img_h, img_w in MS_IMAGES_QUICK if args.quick else MS_IMAGES:
        shapes = []
        for stride in (8, 16, 32, 64):
            shapes += [math.ceil(img_h / stride), math.ceil(img_w / stride)]
        s = sum(shapes[2 * i] * shapes[2 * i + 1] for i in range(4))
        impls = ["fast", "grid_sample", "reference"] + (["dense", "sdpa"] if s <= DENSE_MAX_TOKENS else [])
        for impl in impls:
            spec = {
                "op": "ms",
                "impl": impl,
                "shapes": shapes,
                "heads": 8,
                "head_dim": 32,
                "points": 4,
                **common,
            }
            res = _run_case(spec)
            if res is not None:
                ms_rows.append((f"{img_h}x{img_w}", s, impl, res))
    _print_rows("ms_deform_attn (C=256, M=8, L=4 strides 8-64, P=4; Lq = S)", "image", ms_rows)

    print()
    if len(st_fast) >= 3:
        xs = sorted(st_fast)
        print(
            f"st_deform_attn fast: log-log slope of time vs T·H·W = {_slope(xs, [st_fast[x] for x in xs]):.3f} (target ≤ 1.1)"
        )
    target = f"{TARGET_CASE[0]}x{TARGET_CASE[1]}x{TARGET_CASE[2]}"
    at = {impl: res for case, _, impl, res in st_rows if case == target}
    if "fast" in at:
        for impl in ("dense", "sdpa"):
            if impl in at:
                ratio = at[impl]["time_s"] / at["fast"]["time_s"]
                print(f"st_deform_attn fast vs {impl} at T=36, 10x17: {ratio:.1f}x faster (target ≥ 20x)")
    print(
        f"torch threads: {args.threads or 'default'}; repeats: {repeats}; memory = peak RSS delta per fresh subprocess"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
