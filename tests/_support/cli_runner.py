"""Run the tiny CLI in a subprocess and read back what it recorded in MLflow (tests only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_CLI = Path(__file__).with_name("tiny_cli.py")
BASE_ARGS = ["--data", "tiny.TinyDataModule", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]


def tiny_env(tracking_uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_TRACKING_URI=tracking_uri, CI="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def run_tiny(args: list[str], tracking_uri: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python tiny_cli.py <args>`` with a private MLflow store; returns the completed process."""
    return subprocess.run(
        [sys.executable, str(TINY_CLI), *args],
        cwd=cwd,
        env=tiny_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_tiny(args: list[str], tracking_uri: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(TINY_CLI), *args],
        cwd=cwd,
        env=tiny_env(tracking_uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def runs(tracking_uri: str, experiment: str = "tiny") -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])
