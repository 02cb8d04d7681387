"""SpVOS's claim in shape: triple-sparse vs non-sparse STCN on the same synthetic data and training budget.

Reports, on the held-out (val) synthetic DAVIS videos, whole-video inference with the model's protocol
(mixed processing, memory every 5 frames, top-k 20):

* executed convolution FLOPs of the layers the triple model sparsifies (Q + D), per frame, and their ratio
  (SpVOS: 128.42 / 220.62 G overall, Table IV Q 24.13/36.00 G, D 86.83/167.16 G); gate FLOPs listed apart;
* Table IV style executed conv GFLOPs per frame of the query encoder (Q), memory encoder (M), decoder (D);
* J&F (davis2017-evaluation protocol, :class:`JandF`);
* CPU inference fps of both models measured in one run (alternating videos, same threads, no FLOP-counting
  hooks: a separate untimed pass counts FLOPs), at the native size and, with ``--fps-size``, on the videos
  resized to e.g. 240×432 (half of DAVIS 480p);
* the skip / reuse / compute split per sparse layer and overall (Fig. 5: 66.1 % skip, 23.8 % reuse).

    # after the two fits of experiments/spvos/synthetic.yaml [+ claim.yaml] (--model.gate triple / none):
    python experiments/spvos/analysis/claim.py --triple-ckpt outputs/spvos/claim_triple/checkpoints/last.ckpt \\
        --dense-ckpt outputs/spvos/claim_none/checkpoints/last.ckpt --fps-size 240 432
    python experiments/spvos/analysis/claim.py --quick     # < 1 min smoke: tiny models trained 4 steps each
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from vidseg_common.data.datamodules.vos import VOSDataModule
from vidseg_common.metrics.jandf import JandF
from vidseg_spvos.flops import ConvFlopCounter
from vidseg_spvos.inference import segment_video
from vidseg_spvos.module import SpVOSModule

REPO = Path(__file__).resolve().parents[3]
QUICK_MODEL = dict(key_backbone="resnet18", value_dim=32, decoder_channels=(32, 16, 16), boot_start=100, boot_end=200)
QUICK_DATA = dict(num_videos=4, num_val_videos=2, num_frames=8, height=32, width=48)


def build_datamodule(config: Path, quick: bool, cache_dir: str | None) -> VOSDataModule:
    """The DataModule of ``config`` (the same cached synthetic set the fit used)."""
    init = dict(yaml.safe_load(config.read_text())["data"]["init_args"])
    init.update(num_workers=0, cache_dir=cache_dir)
    if quick:
        init.update(synthetic={**init.get("synthetic", {}), **QUICK_DATA}, crop_size=[32, 32], batch_size=2)
    dm = VOSDataModule(**init)
    dm.setup("fit")
    return dm


def quick_train(gate: str, dm: VOSDataModule, steps: int) -> SpVOSModule:
    """A tiny model trained ``steps`` AdamW steps (smoke path of ``--quick``)."""
    torch.manual_seed(0)
    module = SpVOSModule(gate=gate, **QUICK_MODEL)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    batches = list(dm.train_dataloader())
    for step in range(steps):
        loss = module.compute_loss(batches[step % len(batches)], step)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval()


def evaluate(modules: dict[str, SpVOSModule], videos: list[dict[str, Any]], selected: set[str]) -> dict[str, dict]:
    """Inference of every model on every video (untimed): J&F, executed conv FLOPs and the sparse layers' split."""
    results = {name: {"jf": JandF(), "frames": 0, "counter": ConvFlopCounter(m.net, selected)}
               for name, m in modules.items()}
    for module in modules.values():
        for layer in module.net.sparse_layers.values():
            layer.reset_statistics()
    for batch in videos:
        meta = batch["meta"][0]
        height, width = (int(v) for v in meta["size"])
        for name, module in modules.items():
            res = results[name]
            with res["counter"]:
                pred = run_video(module, batch)
            res["frames"] += pred.shape[0]
            res["jf"].update(pred[:, :height, :width], batch["masks"][0, :, :height, :width], meta["video"])
    return results


def run_video(module: SpVOSModule, batch: dict[str, Any]) -> torch.Tensor:
    """Whole-video inference with the model's protocol (mixed processing, memory every 5, top-k 20)."""
    first = {o: 0 for o in range(1, int(batch["num_objects"][0]) + 1)}
    return segment_video(module.net, batch["frames"][0], batch["masks"][0], first, module.strategy,
                         module.mem_every, module.top_k, batch["meta"][0]["video"])


def time_inference(modules: dict[str, SpVOSModule], videos: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Frames per second of every model: no hooks, models alternating per video, ``repeats`` passes, one warm-up video."""
    seconds = dict.fromkeys(modules, 0.0)
    frames = dict.fromkeys(modules, 0)
    for module in modules.values():
        run_video(module, videos[0])
    for _ in range(repeats):
        for batch in videos:
            for name, module in modules.items():
                start = time.perf_counter()
                pred = run_video(module, batch)
                seconds[name] += time.perf_counter() - start
                frames[name] += pred.shape[0]
    return {name: frames[name] / seconds[name] for name in modules}


def resize_video(batch: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """The video resized to ``size`` (frames bilinear, masks nearest, meta size updated)."""
    frames = torch.nn.functional.interpolate(batch["frames"][0], size=size, mode="bilinear", align_corners=False)[None]
    masks = batch["masks"][0, :, None].float()
    masks = torch.nn.functional.interpolate(masks, size=size, mode="nearest")[:, 0].long()[None]
    return {**batch, "frames": frames, "masks": masks, "meta": [dict(batch["meta"][0], size=list(size))]}


def split_table(module: SpVOSModule) -> list[tuple[str, float, float, float]]:
    rows = []
    for name, layer in module.net.sparse_layers.items():
        stats = layer.statistics()
        rows.append((name, stats["skip_fraction"], stats["reuse_fraction"], stats["compute_fraction"]))
    return rows


def print_size_table(label: str, results: dict[str, dict], fps: dict[str, float]) -> None:
    """One row per model: J&F, executed GFLOP/frame in the sparsified layers, gates, Q / M / D, fps."""
    print(f"{label}")
    print(f"{'model':<11}{'J&F':>7}{'Q+D sparsified GFLOP/f':>24}{'gate GFLOP/f':>14}{'Q':>8}{'M':>8}{'D':>8}{'fps':>8}")
    for name, res in results.items():
        counter, frames = res["counter"], res["frames"]
        gate = sum(counter.gate_by_part.values())
        res["jf_value"] = float(res["jf"].compute()["J&F-Mean"])
        parts = [counter.by_part.get(p, 0.0) / frames / 1e9 for p in ("Q", "M", "D")]
        print(f"{name:<11}{res['jf_value']:>7.3f}{counter.selected / frames / 1e9:>24.4f}{gate / frames / 1e9:>14.4f}"
              f"{parts[0]:>8.4f}{parts[1]:>8.4f}{parts[2]:>8.4f}{fps[name]:>8.2f}")
    t, d = results["triple"], results["non-sparse"]
    print(f"  executed conv FLOPs in the sparsified layers, triple / non-sparse: "
          f"{t['counter'].selected / d['counter'].selected:.3f} (target ≤ 0.60)")
    print(f"  J&F difference (triple − non-sparse): {100 * (t['jf_value'] - d['jf_value']):+.2f} points (target ≥ −3)")
    print(f"  CPU fps ratio (triple / non-sparse): {fps['triple'] / fps['non-sparse']:.3f} (target > 1)")


def print_split(module: SpVOSModule) -> None:
    """Fig. 5: skip / reuse / compute per sparse layer and pixel-weighted over all layers."""
    for name, skip, reuse, compute in split_table(module):
        print(f"  {name:<52}{skip:>7.1%}{reuse:>8.1%}{compute:>8.1%}")
    pixels = {k: sum(layer.pixel_counts[k] for layer in module.net.sparse_layers.values())
              for k in ("skip", "reuse", "compute")}
    total = max(1, sum(pixels.values()))
    print(f"  {'all layers (pixel-weighted)':<52}{pixels['skip'] / total:>7.1%}{pixels['reuse'] / total:>8.1%}"
          f"{pixels['compute'] / total:>8.1%}   (paper: 66.1 % skip, 23.8 % reuse)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "experiments/spvos/synthetic.yaml")
    parser.add_argument("--triple-ckpt", type=Path)
    parser.add_argument("--dense-ckpt", type=Path)
    parser.add_argument("--quick", action="store_true", help="tiny models, 4 training steps each, tiny data")
    parser.add_argument("--cache-dir", default=None, help="synthetic cache (default: the repository's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over the videos per size")
    parser.add_argument("--fps-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="also run on the val videos resized to H×W (multiples of 16; frames bilinear, masks "
                             "nearest), e.g. 240 432 = half of DAVIS 480p")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dm = build_datamodule(args.config, args.quick, args.cache_dir)
    if args.quick:
        modules = {"triple": quick_train("triple", dm, 4), "non-sparse": quick_train("none", dm, 4)}
    else:
        if args.triple_ckpt is None or args.dense_ckpt is None:
            parser.error("give --triple-ckpt and --dense-ckpt (fits of the config), or --quick")
        modules = {name: SpVOSModule.from_checkpoint(path)
                   for name, path in (("triple", args.triple_ckpt), ("non-sparse", args.dense_ckpt))}
    triple = modules["triple"]
    selected = set(triple.net.sparse_layers)
    videos = list(dm.val_dataloader())
    sizes = [("native", videos)]
    if args.fps_size:
        if any(v % 16 for v in args.fps_size):
            parser.error(f"--fps-size {args.fps_size}: both must be multiples of 16")
        sizes.append(("resized", [resize_video(v, tuple(args.fps_size)) for v in videos]))
    h, w = videos[0]["frames"].shape[-2:]
    print(f"SpVOS claim on {len(videos)} held-out synthetic videos ({sum(v['frames'].shape[1] for v in videos)} "
          f"frames, {h}×{w}), {args.threads} threads, {'quick' if args.quick else 'checkpoints'}; sparsified layers: "
          f"{len(selected)} ({', '.join(triple.net.sparse_modules)}); fps: {args.repeats} timed passes, no hooks")
    with torch.inference_mode():
        for label, clips in reversed(sizes):  # the native size last: its per-layer split is printed below
            fps = time_inference(modules, clips, args.repeats)
            results = evaluate(modules, clips, selected)
            size = "×".join(str(v) for v in clips[0]["frames"].shape[-2:])
            print_size_table(f"\n[{size}{' (native)' if label == 'native' else ''}]", results, fps)
    print("\nskip / reuse / compute per sparse layer at the native size (sparse frames only; Fig. 5)")
    print_split(triple)


if __name__ == "__main__":
    main()
