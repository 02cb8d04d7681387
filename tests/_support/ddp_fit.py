"""2-process CPU DDP (gloo) fit of a paper CLI and its single-process ``validate``, for the DDP tests.

Run in a subprocess: under pytest, Lightning's ``ddp`` launcher would re-run the pytest command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[2]


def _tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _run_cli(paper: str, subcommand: str, args: Sequence[str], tmp_path: Path, timeout: int) -> str:
    """``python -m vidseg_<paper> <subcommand> <args>`` with the private store and data cache of ``tmp_path``;
    checks that it exits 0 and returns its stdout + stderr."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": _tracking_uri(tmp_path), "CI": "1", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", f"vidseg_{paper}", subcommand, *args,
               "--data.init_args.cache_dir", str(tmp_path / "cache"), "--data.init_args.num_workers", "0"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _runs(paper: str, tmp_path: Path, stage: str) -> list[Any]:
    client = MlflowClient(_tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name(paper)
    return client.search_runs([experiment.experiment_id], filter_string=f"tags.stage = '{stage}'")


def run_ddp_fit(paper: str, args: Sequence[str], tmp_path: Path, timeout: int = 900) -> tuple[Any, Path]:
    """``python -m vidseg_<paper> fit <args>`` on 2 CPU processes with a private MLflow store.

    Checks that it exits 0 on the gloo backend and that exactly one finished MLflow run exists (only rank 0
    logs). Returns that run and the path of ``last.ckpt``.
    """
    out = tmp_path / "out"
    output = _run_cli(paper, "fit", [*args, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                                     "--trainer.default_root_dir", str(out)], tmp_path, timeout)
    assert "distributed_backend=gloo" in output
    client = MlflowClient(_tracking_uri(tmp_path))
    (run,) = client.search_runs([client.get_experiment_by_name(paper).experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "fit"
    return run, out / "checkpoints" / "last.ckpt"


def run_single_validate(paper: str, args: Sequence[str], ckpt_path: Path, tmp_path: Path, timeout: int = 900) -> Any:
    """``python -m vidseg_<paper> validate <args> --ckpt_path <ckpt_path>`` in one process (no process group),
    in the same MLflow store and data cache as :func:`run_ddp_fit`; returns its finished ``stage=validate`` run."""
    _run_cli(paper, "validate", [*args, "--ckpt_path", str(ckpt_path), "--trainer.devices", "1",
                                 "--trainer.strategy", "auto", "--trainer.default_root_dir", str(tmp_path / "validate")],
             tmp_path, timeout)
    (run,) = _runs(paper, tmp_path, "validate")
    assert run.info.status == "FINISHED"
    return run


def last_value(run: Any, key: str, tmp_path: Path) -> float:
    """The last value logged for metric ``key`` in ``run`` (by step, then time)."""
    history = MlflowClient(_tracking_uri(tmp_path)).get_metric_history(run.info.run_id, key)
    assert history, f"{key} was not logged in run {run.info.run_id}: {sorted(run.data.metrics)}"
    return max(history, key=lambda m: (m.step, m.timestamp)).value


def run_predict(paper: str, args: Sequence[str], tmp_path: Path, devices: int, out: Path, timeout: int = 900) -> Path:
    """``predict`` on ``devices`` CPU processes (DDP on gloo when 2) writing to ``out``; returns ``out``."""
    strategy = "ddp" if devices > 1 else "auto"
    _run_cli(paper, "predict", [*args, "--trainer.devices", str(devices), "--trainer.strategy", strategy,
                                "--model.output_dir", str(out), "--trainer.default_root_dir", str(tmp_path / "out")],
             tmp_path, timeout)
    return out
