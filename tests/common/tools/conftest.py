"""Shared fixtures of the ``vidseg compare`` / ``vidseg visualize`` tests: tiny datasets and an MLflow store."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.generator import generate_dataset
from vidseg_common.tools.main import main

VIS_SIZE = (120, 200)
"""YouTube-VIS frames are larger: the captions ("1 red-circle 0.90") must leave mask pixels uncovered."""


@pytest.fixture
def vidseg(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``vidseg(*args)`` runs ``vidseg <args>`` in-process and returns (exit code, stdout, stderr)."""

    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small synthetic DAVIS, Cityscapes (48×80) and YouTube-VIS (:data:`VIS_SIZE`) sets, 2 validation videos each."""
    base = tmp_path_factory.mktemp("viz_data")
    roots = {}
    for layout, frames, (height, width) in (("davis", 6, (48, 80)), ("youtube_vis", 15, VIS_SIZE), ("cityscapes", 1, (48, 80))):
        cfg = SyntheticConfig(layout=layout, num_videos=0, num_val_videos=2, num_frames=frames, height=height, width=width,
                              min_objects=2, max_objects=2, write_flow=False, seed=3)
        roots[layout] = generate_dataset(base / layout, cfg, workers=1)
    return roots


@pytest.fixture(scope="session")
def _empty_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sqlite store with its schema created once (migrations take seconds) and no runs."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def empty_store(_empty_store_template: Path, tmp_path: Path) -> str:
    """A fresh copy of the empty store; returns its URI."""
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copyfile(_empty_store_template, path)
    return f"sqlite:///{path}"
