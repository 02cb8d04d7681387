"""SeqFormer Table 3 ablation in shape: query decomposition on vs off, same synthetic budget (issue 9, must-show 3).

Trains ``experiments/seqformer/synthetic.yaml`` twice through the CLI (in this process), once as is (per-frame box queries) and
once with ``ablation_no_decomposition.yaml`` (``model.decompose: false``), with the same seed, steps and lr
schedule, then prints the held-out video AP/AR of both. Each arm is one ``vidseg-seqformer fit`` with its own
MLflow sqlite store under ``--out``; ``--lock`` takes an exclusive ``flock`` on a file for each
arm (shared machines: one timed run at a time). The paper (YTVIS-19, R50) reports 45.1 AP with decomposition
and 34.1 without.

    OMP_NUM_THREADS=1 python experiments/seqformer/analysis/decomposition.py --epochs 8 --lock /tmp/vidseg_train.lock
    python experiments/seqformer/analysis/decomposition.py --quick     # < 1 min: tiny network, 2 videos (``make bench``)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from mlflow import MlflowClient

from vidseg_seqformer.cli import main as cli_main

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "experiments" / "seqformer"
METRICS = ("ap", "ap50", "ap75", "ar1", "ar10")
QUICK = [  # a network and a data set small enough for two fits in well under a minute
    "--model.backbone", "test_resnet", "--model.num_classes", "5", "--model.num_queries", "4", "--model.hidden_dim", "32",
    "--model.ffn_dim", "64", "--model.num_heads", "4", "--model.encoder_points", "2", "--model.decoder_points", "2",
    "--model.num_decoder_layers", "2", "--data.init_args.synthetic.num_videos", "2", "--data.init_args.synthetic.num_val_videos",
    "1", "--data.init_args.synthetic.num_frames", "10", "--data.init_args.num_workers", "0",
]


@contextlib.contextmanager
def exclusive(path: str | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (no-op for ``None``)."""
    if path is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_arm(name: str, overlay: list[str], args: argparse.Namespace) -> dict[str, float]:
    """One ``fit``; returns the last validation metrics, ``steps`` and the wall ``seconds``."""
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{out.resolve() / 'mlflow.db'}"
    milestone = max(1, round(0.8 * args.epochs))
    command = [
        "fit", "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(CONFIGS / "synthetic.yaml"), *overlay,
        "--trainer.max_epochs", str(args.epochs), "--trainer.check_val_every_n_epoch", str(args.epochs),
        "--model.scheduler.milestones", f"[{milestone}]", "--trainer.default_root_dir", str(out),
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        *(QUICK if args.quick else []),
    ]
    os.environ["MLFLOW_TRACKING_URI"] = uri
    with exclusive(args.lock):
        start = time.perf_counter()
        cli_main(command)
        seconds = time.perf_counter() - start
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("seqformer")
    run = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)[0]
    metrics = {key: run.data.metrics[f"val/{key}"] for key in METRICS}
    steps = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]
    return {**metrics, "steps": float(steps), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of each arm (32 steps each)")
    parser.add_argument("--out", default=str(REPO / "outputs" / "seqformer" / "decomposition"))
    parser.add_argument("--lock", default=None, help="file to flock around each arm's training")
    parser.add_argument("--quick", action="store_true", help="tiny network and data, 1 epoch (wiring check)")
    args = parser.parse_args()
    if args.quick:
        args.epochs = 1
        args.out = str(Path(args.out) / "quick")
    arms = {
        "with decomposition (paper)": [],
        "without (Table 3 ablation)": ["-c", str(CONFIGS / "ablation_no_decomposition.yaml")],
    }
    rows = {name: run_arm(f"arm{i}", overlay, args) for i, (name, overlay) in enumerate(arms.items())}
    print(f"SeqFormer decomposition ablation, synthetic.yaml, {args.epochs} epochs per arm"
          f"{' (--quick: tiny network)' if args.quick else ''}")
    print(f"{'arm':28s} {'steps':>5s} " + " ".join(f"{m.upper():>6s}" for m in METRICS) + f" {'wall s':>7s}")
    for name, row in rows.items():
        print(f"{name:28s} {int(row['steps']):5d} " + " ".join(f"{row[m]:6.3f}" for m in METRICS) + f" {row['seconds']:7.0f}")


if __name__ == "__main__":
    main()
