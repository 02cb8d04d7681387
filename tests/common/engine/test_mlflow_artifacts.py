"""Artifacts of an sqlite-backed run live next to its database, never in the current directory."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from vidseg_common.engine.mlflow import VidSegMLFlowLogger


def test_artifacts_go_next_to_the_sqlite_file(mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    logger = VidSegMLFlowLogger(experiment_name="exp")
    logger.experiment.log_text(logger.run_id, "hello", "note.txt")
    experiment = mlflow.MlflowClient(mlflow_uri).get_experiment_by_name("exp")
    assert Path(experiment.artifact_location.removeprefix("file://")) == tmp_path / "mlruns" / "exp"
    assert list((tmp_path / "mlruns" / "exp").rglob("note.txt"))
    assert not (cwd / "mlruns").exists()
