"""SSTVOS ablation on synthetic occlusion videos: τ = 1 vs τ = 3 (Table 5) and grid vs local attention (Table 6).

Every variant starts from ``experiments/sstvos/synthetic.yaml`` (same data, seed, optimiser and step budget),
changes one option, trains for ``--steps`` optimiser steps on CPU and is scored with J&F on the held-out
synthetic videos (frame-by-frame inference, ``JandF``). The paper's direction: τ = 3 > τ = 1 by 0.7 J&F and
local > grid by 10 J&F on DAVIS-17; here the budget is minutes, so read differences of a point or two as noise
(the script prints the seed-to-seed spread only if ``--seeds`` > 1).

Usage: ``python experiments/sstvos/analysis/ablation.py [--quick] [--steps 150] [--seeds 1]``
(``--quick``: tiny frames, 8 steps per variant, < 1 minute: a smoke run for ``make bench``.)
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml

from vidseg_common.data.datamodules.vos import VOSDataModule
from vidseg_sstvos.module import SSTVOSModule

ROOT = Path(__file__).resolve().parents[3]
VARIANTS: dict[str, dict[str, Any]] = {
    "local, τ=3": {"attention": "local", "history": 3},
    "local, τ=1": {"attention": "local", "history": 1},
    "grid, τ=3": {"attention": "grid", "history": 3},
}
QUICK_DATA = {"synthetic": {"num_videos": 8, "num_val_videos": 2, "num_frames": 8, "height": 48, "width": 80,
                            "full_occlusion": True, "write_flow": False},
              "crop_size": [48, 48], "crop_scale": [0.5, 0.7], "repeat": 1, "batch_size": 2}


def run_variant(options: dict[str, Any], data_options: dict[str, Any], steps: int, seed: int, out: Path) -> tuple[float, float]:
    """Train one variant for ``steps`` steps and return (val J&F, seconds)."""
    L.seed_everything(seed, verbose=False)
    model = SSTVOSModule(**options)
    data = VOSDataModule(**data_options)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, max_epochs=-1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, gradient_clip_val=5.0, default_root_dir=str(out))
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    (metrics,) = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                           enable_model_summary=False).validate(model, datamodule=data, verbose=False)
    return float(metrics["val/jf"]), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny data, 8 steps per variant (< 1 minute)")
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps per variant")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per variant")
    parser.add_argument("--config", type=Path, default=ROOT / "experiments" / "sstvos" / "synthetic.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "sstvos" / "ablation")
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    config = yaml.safe_load(args.config.read_text())
    model_options = dict(config["model"])
    data_options = {**config["data"]["init_args"], "num_workers": 0}
    steps = 8 if args.quick else args.steps
    if args.quick:
        data_options.update(QUICK_DATA)
        model_options.update(hidden_dim=16, num_heads=2, ffn_dim=16, stage_channels=[16, 16], aspp_channels=16, decoder_channels=16)
    model_options["scheduler"] = {**model_options.get("scheduler", {}), "warmup_steps": min(30, steps // 4)}
    print(f"SSTVOS ablation on synthetic occlusion videos: {steps} steps per variant, {args.seeds} seed(s), "
          f"{torch.get_num_threads()} threads, config {args.config.name}{' (quick)' if args.quick else ''}")
    print(f"{'variant':<14}{'J&F mean':>10}{'J&F per seed':>26}{'s/run':>8}")
    for name, change in VARIANTS.items():
        scores, seconds = [], []
        for seed in range(args.seeds):
            jf, sec = run_variant({**model_options, **change}, data_options, steps, seed, args.out)
            scores.append(jf)
            seconds.append(sec)
        per_seed = " ".join(f"{s:.3f}" for s in scores)
        print(f"{name:<14}{np.mean(scores):>10.3f}{per_seed:>26}{np.mean(seconds):>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
