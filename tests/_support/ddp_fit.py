"""2-process CPU DDP (gloo) fit of a paper CLI, shared by the papers' DDP smoke tests.

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


def run_ddp_fit(paper: str, args: Sequence[str], tmp_path: Path, timeout: int = 900) -> tuple[Any, Path]:
    """``python -m vidseg_<paper> fit <args>`` on 2 CPU processes with a private MLflow store.

    Checks that it exits 0 on the gloo backend and that exactly one finished MLflow run exists (only rank 0
    logs). Returns that run and the path of ``last.ckpt``.
    """
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CI": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "out"
    command = [sys.executable, "-m", f"vidseg_{paper}", "fit", *args,
               "--data.init_args.cache_dir", str(tmp_path / "cache"), "--data.init_args.num_workers", "0",
               "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.default_root_dir", str(out)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(paper).experiment_id])
    assert run.info.status == "FINISHED"
    return run, out / "checkpoints" / "last.ckpt"
