"""SSTVOS Table 1: MACs of the SST encoder's attention at τ = 3, 465×465 input, C = 128, 3 layers.

The numbers are counted, not hard-coded: the package's own ``SSTEncoder`` (grid / local / strided /
local_strided) runs on meta tensors under ``torch.utils.flop_counter.FlopCounterMode``, which uses the
``vidseg::sparse_st_attn`` op's registered FLOP formula (2 FLOPs per multiply-add over the pattern's slots:
logits and aggregation). "Naive" is dense attention over all ``S = T·h·w`` cells of the buffer (the same
counter on ``einsum``s). The buffer is the τ previous frames plus the current one (``T = τ + 1``, what a
frame attends over); the attention grid is the input size at the attention stride (ceil, like ResNet's padded
convolutions). Table 1's numbers are printed alongside for comparison (they are the paper's, not ours).

Usage: ``python experiments/sstvos/analysis/attention_macs.py [--quick] [--stride 8] [--tau 3]``
"""

from __future__ import annotations

import argparse
import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidseg_sstvos.encoder import SSTEncoder

PAPER_GMACS = {"local": 5.34, "strided": 1.89, "grid": 1.45, "naive": 170.1}  # SSTVOS Table 1


def encoder_gmacs(pattern: str, channels: int, layers: int, heads: int, frames: int, size: int) -> tuple[float, float]:
    """(attention-op GMACs, projection + FFN GMACs) of ``layers`` encoder layers on a ``frames × size × size`` grid."""
    with torch.device("meta"):
        encoder = SSTEncoder(channels, layers, heads, pattern, ffn_dim=channels, positional_encoding="none")
        x = torch.empty(1, channels, frames, size, size)
        labels = torch.zeros(1, frames, size, size, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        encoder(x, labels, 3)
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    attention = counts.pop("vidseg.sparse_st_attn", 0)
    return attention / 2e9, sum(counts.values()) / 2e9


def naive_gmacs(channels: int, layers: int, heads: int, frames: int, size: int) -> float:
    """Dense multi-head attention over all cells (logits + aggregation), counted on meta tensors."""
    cells = frames * size * size
    with torch.device("meta"):
        q = torch.empty(heads, channels // heads, cells)
    with FlopCounterMode(display=False) as counter:
        for _ in range(layers):
            weights = torch.einsum("ncp,ncq->npq", q, q)
            torch.einsum("npq,ncq->ncp", weights, q)
    return counter.get_total_flops() / 2e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="grid and local only (for make bench)")
    parser.add_argument("--input", type=int, default=465, help="input side (Table 1: 465)")
    parser.add_argument("--stride", type=int, default=8, help="attention stride (paper: unknown; ours 8)")
    parser.add_argument("--tau", type=int, default=3, help="temporal buffer τ (Table 1: 3)")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=8)
    args = parser.parse_args(argv)
    size = math.ceil(args.input / args.stride)
    frames = args.tau + 1
    print(f"SST encoder MACs: input {args.input}², stride {args.stride} → {size}×{size} grid, T = τ+1 = {frames}, "
          f"C = {args.channels}, {args.layers} layers, {args.heads} heads")
    print(f"{'attention':<14}{'attn GMACs':>12}{'proj+FFN GMACs':>16}{'Table 1 GMACs':>15}{'ours/paper':>12}")
    patterns = ["grid", "local"] if args.quick else ["grid", "strided", "local", "local_strided"]
    for pattern in patterns:
        attention, rest = encoder_gmacs(pattern, args.channels, args.layers, args.heads, frames, size)
        paper = PAPER_GMACS.get(pattern)
        ratio = f"{attention / paper:.2f}" if paper else "-"
        print(f"{pattern:<14}{attention:>12.2f}{rest:>16.2f}{paper if paper else '-':>15}{ratio:>12}")
    naive = naive_gmacs(args.channels, args.layers, args.heads, frames, size)
    print(f"{'naive':<14}{naive:>12.2f}{'-':>16}{PAPER_GMACS['naive']:>15}{naive / PAPER_GMACS['naive']:>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
