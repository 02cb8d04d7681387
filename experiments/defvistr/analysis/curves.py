"""Learning curves of Deformable VisTR vs VisTR (``attention: dense``) on the same synthetic data and budget.

The paper's claim in shape (Deformable VisTR §4: "10× fewer GPU hours" than VisTR for similar AP): both
models are trained with ``vidseg-defvistr fit -c experiments/_base/trainer_cpu.yaml -c
experiments/defvistr/synthetic.yaml [-c experiments/defvistr/vistr_dense.yaml]`` — identical data, seed,
recipe and step budget; only the encoder self-attention and decoder cross-attention differ — each in its
own subprocess with a private MLflow store. The table gives, at every validation, ``val/ap`` and
``val/ap50`` against the optimisation step and against the wall time since the run started (read from
MLflow's metric timestamps, so validation time is included), then per model the first step / wall time at
which ``val/ap`` reached each threshold.

Usage::

    python experiments/defvistr/analysis/curves.py                      # the full synthetic budget of both models
    python experiments/defvistr/analysis/curves.py --quick              # < 1 min: tiny model, few steps (plumbing only)
    python experiments/defvistr/analysis/curves.py --extra --trainer.max_epochs 20    # any further CLI overrides
    # one model per invocation (e.g. one timed run per shared-CPU lock), then the table of both:
    python experiments/defvistr/analysis/curves.py --attention deformable --workdir outputs/defvistr/curves
    python experiments/defvistr/analysis/curves.py --attention dense --workdir outputs/defvistr/curves
    python experiments/defvistr/analysis/curves.py --attention --workdir outputs/defvistr/curves   # report only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
STATS = ("ap50", "ap75", "ar1", "ar10")
QUICK = [
    "--model.hidden_dim", "48", "--model.num_encoder_layers", "1", "--model.num_decoder_layers", "1",
    "--model.ffn_dim", "32", "--model.num_points", "2", "--model.num_frames", "2",
    "--data.init_args.num_frames", "2", "--data.init_args.synthetic.num_videos", "4",
    "--data.init_args.synthetic.num_val_videos", "1", "--data.init_args.synthetic.num_frames", "10",
    "--data.init_args.synthetic.height", "64", "--data.init_args.synthetic.width", "64",
    "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1",
]


def train(attention: str, workdir: Path, extra: list[str], threads: int) -> None:
    """Fit one model, recording to ``<workdir>/mlflow.db``."""
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    configs = ["-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / "experiments/defvistr/synthetic.yaml")]
    if attention == "dense":
        configs += ["-c", str(REPO / "experiments/defvistr/vistr_dense.yaml")]
    root = workdir / attention
    args = [sys.executable, "-m", "vidseg_defvistr", "fit", *configs, "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(root), "--data.init_args.num_workers", "0", *extra]
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    (workdir / f"{attention}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"{attention} run failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


def curve(attention: str, workdir: Path) -> tuple[list[tuple[float, ...]], float] | None:
    """The latest finished run of ``attention`` in ``workdir``: ``[(step, s since start, val/ap, ap50, ap75, ar1,
    ar10)]`` at every validation and its total wall time, or ``None``."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    if not (workdir / "mlflow.db").is_file():
        return None

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("defvistr")
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], f"params.attention = '{attention}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    run = runs[0]
    t0 = run.info.start_time
    wall = (run.info.end_time - t0) / 1000
    ap = {m.step: m for m in client.get_metric_history(run.info.run_id, "val/ap")}
    others = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"val/{key}")} for key in STATS}
    rows = [(step, (m.timestamp - t0) / 1000, m.value, *(others[key].get(step, float("nan")) for key in STATS))
            for step, m in sorted(ap.items())]
    return rows, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and data, 2 epochs (< 1 min)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4])
    parser.add_argument("--workdir", type=Path, default=None, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--attention", nargs="*", choices=["deformable", "dense"], default=["deformable", "dense"],
                        help="models to train now (none: only report the runs already in --workdir)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further CLI overrides for both runs")
    args = parser.parse_args()
    extra = (QUICK if args.quick else []) + args.extra
    with tempfile.TemporaryDirectory(prefix="defvistr_curves_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.quick:
            extra += ["--data.init_args.cache_dir", str(workdir / "cache")]
        for attention in args.attention:
            train(attention, workdir, extra, args.threads)
        curves = {a: c for a in ("deformable", "dense") if (c := curve(a, workdir)) is not None}
    print(f"synthetic.yaml{' --quick' if args.quick else ''}, {args.threads} threads; wall s = since run start")
    print(f"{'attention':<11} {'step':>6} {'wall s':>8} {'val/ap':>7} " + " ".join(f"{key:>6}" for key in STATS))
    for attention, (rows, _) in curves.items():
        for step, sec, ap, *stats in rows:
            print(f"{attention:<11} {step:>6} {sec:>8.0f} {ap:>7.3f} " + " ".join(f"{v:>6.3f}" for v in stats))
    print(f"{'attention':<11} {'total s':>8} " + " ".join(f"{f'AP≥{t:g} step/s':>16}" for t in args.thresholds))
    for attention, (rows, wall) in curves.items():
        cells = []
        for threshold in args.thresholds:
            hit = next(((step, sec) for step, sec, ap, *_ in rows if ap >= threshold), None)
            cells.append(f"{'-' if hit is None else f'{hit[0]}/{hit[1]:.0f}':>16}")
        print(f"{attention:<11} {wall:>8.0f} " + " ".join(cells))


if __name__ == "__main__":
    main()
