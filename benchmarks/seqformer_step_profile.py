"""Where one SeqFormer training step spends its time (CPU): backbone, encoder, decoder, mask branch, matcher,
dynamic mask head, losses, backward, optimiser.

Builds the module and a real synthetic batch from an experiment YAML (``model:`` and ``data.init_args``), runs
``--warmup`` steps, then times ``--steps`` steps. Forward parts are timed by wrapping the sub-modules; backward
and the optimiser step are timed as a whole; ``--ops`` also prints torch.profiler's top operators (self CPU).

    OMP_NUM_THREADS=1 python benchmarks/seqformer_step_profile.py -c experiments/seqformer/synthetic.yaml [--ops]
    python benchmarks/seqformer_step_profile.py --quick      # seconds: tiny network and data (``make bench``)
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from vidseg_common.data.datamodules.vis import VISDataModule
from vidseg_seqformer.module import SeqFormerModule

QUICK_MODEL = dict(backbone="test_resnet", num_classes=5, num_queries=4, hidden_dim=32, ffn_dim=64, num_heads=4,
                   encoder_points=2, decoder_points=2, num_decoder_layers=2)
QUICK_DATA = dict(num_videos=2, num_val_videos=1, num_frames=10)


def build(config: Path, cache_dir: str | None, quick: bool = False) -> tuple[SeqFormerModule, VISDataModule]:
    """Module and DataModule of an experiment YAML (workers forced to 0; ``quick``: tiny network and data)."""
    cfg = yaml.safe_load(config.read_text())
    model_args = {k: v for k, v in cfg.get("model", {}).items() if k != "scheduler"}  # no trainer: constant lr
    module = SeqFormerModule(**{**model_args, **(QUICK_MODEL if quick else {})})
    data_args = {**cfg["data"]["init_args"], "num_workers": 0}
    if quick:
        data_args["synthetic"] = {**data_args.get("synthetic", {}), **QUICK_DATA}
    if cache_dir is not None:
        data_args["cache_dir"] = cache_dir
    return module, VISDataModule(**data_args)


def _timed(totals: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        totals[name] += time.perf_counter() - start
        return out
    return wrapper


def instrument(module: SeqFormerModule, totals: dict[str, float]) -> None:
    """Wrap the forward of the parts of interest so that their wall time accumulates in ``totals``."""
    model = module.model
    model.backbone.forward = _timed(totals, "backbone", model.backbone.forward)
    model.encoder.forward = _timed(totals, "encoder (MSDeformAttn)", model.encoder.forward)
    model.decoder.forward = _timed(totals, "decoder", model.decoder.forward)
    model.mask_branch.forward = _timed(totals, "mask branch", model.mask_branch.forward)
    model.mask_head.forward = _timed(totals, "dynamic mask head", model.mask_head.forward)
    module.criterion.matcher.forward = _timed(totals, "matcher", module.criterion.matcher.forward)
    module.criterion.forward = _timed(totals, "criterion (incl. matcher, mask head)", module.criterion.forward)


def step(module: SeqFormerModule, optimizer: torch.optim.Optimizer, batch: dict[str, Any], totals: dict[str, float]) -> None:
    start = time.perf_counter()
    outputs = module.model(batch["frames"])
    losses = module.criterion(outputs, batch["targets"], lambda layer, b, q: module.model.predict_masks(outputs, layer, b, q))
    totals["forward total"] += time.perf_counter() - start
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    totals["backward"] += time.perf_counter() - start
    start = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(module.parameters(), 0.1)
    optimizer.step()
    totals["clip + optimizer"] += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, default=Path("experiments/seqformer/synthetic.yaml"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--ops", action="store_true", help="also print torch.profiler's top operators")
    parser.add_argument("--quick", action="store_true", help="tiny network and data, 2 steps (make bench)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 2, 1

    torch.manual_seed(0)
    module, data = build(args.config, args.cache_dir, args.quick)
    module.train()
    optimizer = module.configure_optimizers()["optimizer"]
    batches: list[dict[str, Any]] = []
    while len(batches) < args.warmup + args.steps:  # as many epochs as needed
        batches.extend(data.train_dataloader())
    batches = batches[: args.warmup + args.steps]
    frames = batches[0]["frames"]
    totals: dict[str, float] = defaultdict(float)
    for batch in batches[: args.warmup]:
        step(module, optimizer, batch, defaultdict(float))
    instrument(module, totals)
    wall = time.perf_counter()
    for batch in batches[args.warmup :]:
        step(module, optimizer, batch, totals)
    wall = time.perf_counter() - wall
    print(f"clip {tuple(frames.shape)} threads={torch.get_num_threads()} steps={args.steps}: "
          f"{1000 * wall / args.steps:.1f} ms/step")
    print(f"{'part':40s} {'ms/step':>9s} {'share':>6s}")
    step_ms = 1000 * wall / args.steps
    for name, seconds in totals.items():
        ms = 1000 * seconds / args.steps
        print(f"{name:40s} {ms:9.1f} {100 * ms / step_ms:5.1f}%")
    if args.ops:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for batch in batches[args.warmup :]:
                step(module, optimizer, batch, defaultdict(float))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
