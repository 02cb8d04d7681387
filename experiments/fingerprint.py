"""Refactoring guard: the first training losses and the final validation metric of each paper, fixed seed.

Runs ``python -m vidseg_<paper> fit`` with the paper's ``experiments/<paper>/synthetic.yaml`` cut to one short epoch
(``--steps`` training batches, then one validation on ``--val-batches`` batches), reads the per-step ``train/loss``
and the main validation metric back from a private MLflow store and writes them as JSON. Two such files, made
before and after a change that must not alter what is computed, are compared with ``--compare``::

    python experiments/fingerprint.py --out before.json            # on the old commit
    python experiments/fingerprint.py --out after.json             # on the new one
    python experiments/fingerprint.py --compare before.json after.json

``--epochs defvistr=1 seqformer=4 spvos=6 --val-batches 4`` trains whole epochs instead (128 / 128 / 72 steps), far
enough for the final metric of those papers to leave 0 after 20 steps.

Only trainer and data overrides are passed on the command line (model keys come from the YAML of the commit
being measured), so the script also measures across renamed configuration keys. One thread per run, no
DataLoader workers: the numbers are bit-reproducible on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPERS = ("sstvos", "spvos", "defvistr", "seqformer", "stt")
METRIC = {"sstvos": "val/jf", "spvos": "val/jf", "defvistr": "val/ap", "seqformer": "val/ap", "stt": "val/miou"}


def run_paper(paper: str, steps: int, val_batches: int, workdir: Path, cache: Path, epochs: int | None = None
              ) -> dict[str, object]:
    """Fit ``paper`` for ``steps`` batches (or ``epochs`` whole epochs) and one validation at the end.

    Returns ``{"losses": [...], "metric": name, "value": v, "val": {every val/* metric}}``.
    """
    length = (["--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(steps)] if epochs is None else
              ["--trainer.max_epochs", str(epochs)])
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CI": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable, "-m", f"vidseg_{paper}", "fit",
        "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / f"experiments/{paper}/synthetic.yaml"),
        "--seed_everything", "0", *length, "--trainer.max_steps", "-1", "--trainer.limit_val_batches", str(val_batches),
        "--trainer.check_val_every_n_epoch", "1" if epochs is None else str(epochs), "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(workdir / "out"),
        "--data.init_args.num_workers", "0", "--data.init_args.cache_dir", str(cache),
    ]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{paper}: fit failed (exit {result.returncode})\n{result.stderr[-4000:]}")
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(paper).experiment_id])
    history = sorted(client.get_metric_history(run.info.run_id, "train/loss_step"), key=lambda m: m.step)
    evaluation = {k: v for k, v in sorted(run.data.metrics.items()) if k.startswith("val/")}
    return {"losses": [m.value for m in history], "metric": METRIC[paper], "value": run.data.metrics[METRIC[paper]],
            "val": evaluation}


def compare(before: dict, after: dict) -> int:
    """Print per paper the largest loss difference and both metric values; exit status 1 when anything moved."""
    moved = 0
    for paper in before:
        a, b = before[paper], after.get(paper)
        if b is None:
            print(f"{paper:10s} missing in the second file")
            moved = 1
            continue
        diff = max((abs(x - y) for x, y in zip(a["losses"], b["losses"])), default=float("nan"))
        shared = sorted(set(a.get("val", {})) & set(b.get("val", {})))
        other = [k for k in shared if a["val"][k] != b["val"][k]]
        same = len(a["losses"]) == len(b["losses"]) and diff == 0.0 and a["value"] == b["value"] and not other
        moved |= not same
        print(f"{paper:10s} {len(a['losses'])}/{len(b['losses'])} losses, max |Δloss| {diff:.3g}, "
              f"{a['metric']} {a['value']:.6f} → {b['value']:.6f}, {len(shared) - len(other)}/{len(shared)} val/* metrics "
              f"equal{' (differ: ' + ', '.join(other) + ')' if other else ''}  {'equal' if same else 'MOVED'}")
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", nargs="+", default=list(PAPERS), choices=PAPERS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--val-batches", type=int, default=2)
    parser.add_argument("--epochs", nargs="+", default=[], metavar="PAPER=E",
                        help="train these papers for E whole epochs instead of --steps batches (e.g. defvistr=1), so "
                             "that the final metric is away from 0")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "fingerprint", help="synthetic data cache")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        raise SystemExit(compare(before, after))
    epochs = {paper: int(value) for paper, value in (item.split("=", 1) for item in args.epochs)}
    results = {}
    for paper in args.papers:
        with tempfile.TemporaryDirectory() as tmp:
            results[paper] = run_paper(paper, args.steps, args.val_batches, Path(tmp), args.cache.resolve(),
                                       epochs.get(paper))
        value = results[paper]["value"]
        print(f"{paper:10s} losses[:3] {results[paper]['losses'][:3]}  {METRIC[paper]} {value:.6f}", flush=True)
    if args.out:
        tmp_out = args.out.with_suffix(".tmp")
        tmp_out.write_text(json.dumps(results, indent=1))
        tmp_out.replace(args.out)


if __name__ == "__main__":
    main()
