"""Encoder cost of Deformable VisTR vs VisTR as the clip grows (the paper's O(HWTCK) vs O((HWT)²C) claim).

Times one forward of the transformer encoder stack (``VisTRTransformer`` encoder layers only) on random
tokens of ``T`` frames at a fixed stride-32 map size, for ``attention`` dense and deformable, and prints
wall time per call, time per frame and the peak extra memory of the call (CPU: ``tracemalloc`` does not see
torch's allocator, so on CPU only time is reported; on CUDA the peak allocated memory).

Usage::

    python experiments/defvistr/analysis/encoder_scaling.py [--frames 2 4 8 16] [--height 12 --width 20] [--device cpu]
    python experiments/defvistr/analysis/encoder_scaling.py --quick    # seconds: C=96, 1 layer, T = 1, 2, 4 (``make bench``)
"""

from __future__ import annotations

import argparse
import time

import torch

from vidseg_defvistr.transformer import VisTRTransformer, encoder_reference_points


def time_encoder(model: VisTRTransformer, t: int, h: int, w: int, device: str, iters: int) -> tuple[float, float]:
    c = model.d_model
    src = torch.randn(1, t * h * w, c, device=device)
    pos = torch.randn_like(src)
    ref = encoder_reference_points(t, h, w, 1, src.device, src.dtype)

    def run() -> None:
        x = src
        for layer in model.encoder_layers:
            x = layer(x, pos, (t, h, w), ref, None)

    with torch.no_grad():
        run()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(iters):
            run()
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else float("nan")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--height", type=int, default=12, help="stride-32 map height (384 px input)")
    parser.add_argument("--width", type=int, default=20, help="stride-32 map width (640 px input)")
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes: C=96, 1 layer, K=8, T=1,2,4, 6×10 map")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.hidden, args.layers, args.points, args.height, args.width = [1, 2, 4], 96, 1, 8, 6, 10
    torch.manual_seed(0)
    print(f"encoder: {args.layers} layers, C={args.hidden}, M=8, K={args.points}, map {args.height}×{args.width}, "
          f"device {args.device}, threads {torch.get_num_threads()}")
    print(f"{'attention':<11} {'T':>4} {'tokens':>7} {'ms/call':>9} {'ms/frame':>9} {'peak MiB':>9}")
    for attention in ("deformable", "dense"):
        model = VisTRTransformer(args.hidden, 8, args.layers, 0, 2048, 0.0, attention, args.points).to(args.device).eval()
        for t in args.frames:
            sec, peak = time_encoder(model, t, args.height, args.width, args.device, args.iters)
            tokens = t * args.height * args.width
            print(f"{attention:<11} {t:>4} {tokens:>7} {sec * 1e3:>9.1f} {sec * 1e3 / t:>9.1f} {peak:>9.1f}")


if __name__ == "__main__":
    main()
