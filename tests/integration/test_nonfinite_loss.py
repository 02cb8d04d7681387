"""A NaN loss stops training with a clear message before the bad update reaches any checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from cli_runner import BASE_ARGS, run_tiny


def test_nan_loss_stops_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_tiny(
        ["fit", *BASE_ARGS, "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(out), "--model.nan_at_step", "6"],
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        tmp_path,
    )
    assert result.returncode == 2
    assert "non-finite training loss" in result.stderr and "global step 6" in result.stderr
    for path in (out / "checkpoints").glob("*.ckpt"):
        state = torch.load(path, weights_only=True, map_location="cpu")
        assert state["global_step"] <= 6
        assert all(torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point())
