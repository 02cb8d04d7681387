"""STT streaming latency: STT vs per-frame baseline vs full temporal attention (ms/frame, fps).

Protocol (docs/reference/vss.md §1.5, our choice where STT is silent): batch 1, streaming mode (each frame encoded
once, keys/values of the last T frames cached), time of the model call including the upsample to the input
size, excluding I/O and argmax; warm-up frames discarded (the cache is full after T frames); CUDA synchronised
around each call when on GPU. ``--module-only`` times just the temporal module on a random ``d_t × h × w`` map
with a full cache (the part that differs between the three variants).

    python experiments/stt/analysis/speed.py --height 512 --width 1024 --device cuda      # 64×128 key maps (Table 3)
    python experiments/stt/analysis/speed.py --module-only                                 # temporal module at 64×128, CPU
    python experiments/stt/analysis/speed.py --quick                                       # < 1 min CPU smoke (128×256)
    python experiments/stt/analysis/speed.py --encoder bisenet --backbone resnet34         # STT-BiSe34

The same numbers for one variant: ``vidseg-stt benchmark -c <config> --height 512 --width 1024 --num_frames 10``
(frames/s = streaming fps with a full cache; add ``--model.use_stt false`` or ``--model.full_attention true``).
"""

from __future__ import annotations

import argparse
import time

import torch

from vidseg_stt.module import STTModule


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stream_latency(module: STTModule, frames: torch.Tensor, warmup: int) -> float:
    """Mean ms per frame of ``stream_step`` over ``frames (N, 3, H, W)`` after ``warmup`` frames."""
    cache: list = []
    times = []
    with torch.inference_mode():
        for i, frame in enumerate(frames):
            _sync(frame.device)
            start = time.perf_counter()
            module.stream_step(frame[None], cache)
            _sync(frame.device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * sum(times) / len(times)


def module_latency(module: STTModule, height: int, width: int, iters: int, device: torch.device) -> float:
    """Mean ms of the temporal module alone at an ``h × w`` feature map with ``T`` cached frames."""
    stt = module.stt
    if stt is None:
        return 0.0
    query = torch.randn(1, stt.in_channels, height, width, device=device)
    with torch.inference_mode():
        key, value = stt.memory(torch.randn(stt.num_key_frames, stt.in_channels, height, width, device=device))
        key, value = key[None], value[None]
        stt(query, key, value)
        _sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            stt(query, key, value)
        _sync(device)
    return 1000.0 * (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--encoder", default="psp", choices=["psp", "bisenet"])
    parser.add_argument("--quick", action="store_true", help="128×256 input, 3 timed frames (CPU smoke, < 1 min)")
    parser.add_argument("--num-key-frames", type=int, default=7)
    parser.add_argument("--iters", type=int, default=10, help="timed frames after the warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--module-only", action="store_true", help="time only the temporal module")
    parser.add_argument("--skip-full", action="store_true", help="skip the full-attention variant")
    args = parser.parse_args()
    if args.quick:
        args.height, args.width, args.iters = 128, 256, 3
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    variants = {"per-frame": {"use_stt": False}, "STT": {}, "full attention": {"full_attention": True}}
    if args.skip_full:
        variants.pop("full attention")
    warmup = args.num_key_frames + 2
    frames = torch.randn(warmup + args.iters, 3, args.height, args.width, device=device)
    stride_h, stride_w = -(-args.height // 8), -(-args.width // 8)
    print(f"input {args.height}×{args.width} (key map {stride_h}×{stride_w}), {args.encoder}-{args.backbone}, T={args.num_key_frames}, "
          f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'} "
          f"({torch.get_num_threads()} threads)")
    print(f"{'variant':<16}{'keys/query':>12}{'ms/frame':>12}{'fps':>8}")
    for name, overrides in variants.items():
        torch.manual_seed(0)
        module = STTModule(encoder=args.encoder, backbone=args.backbone, num_key_frames=args.num_key_frames, **overrides).to(device).eval()
        keys = module.stt.num_keys(stride_h, stride_w) if module.stt is not None else 0
        if args.module_only:
            ms = module_latency(module, stride_h, stride_w, args.iters, device)
        else:
            ms = stream_latency(module, frames, warmup)
        if not ms:  # --module-only: the per-frame model has no temporal module
            print(f"{name:<16}{keys:>12}{'-':>12}{'-':>8}")
            continue
        print(f"{name:<16}{keys:>12}{ms:>12.1f}{1000.0 / ms:>8.2f}")


if __name__ == "__main__":
    main()
