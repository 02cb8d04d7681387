"""2-process CPU DDP (gloo) smoke of ``vidseg-defvistr fit``: the all-reduced box normaliser and VideoAP's
cross-process sync run. In a subprocess: under pytest, Lightning's ddp launcher would re-run pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import runs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        "fit", "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / "experiments/defvistr/synthetic.yaml"),
        "--model.hidden_dim", "48", "--model.num_encoder_layers", "1", "--model.num_decoder_layers", "1",
        "--model.dim_feedforward", "32", "--model.n_points", "2", "--model.num_frames", "2",
        "--data.init_args.num_frames", "2", "--data.init_args.num_workers", "0",
        "--data.init_args.cache_dir", str(tmp_path / "cache"), "--data.init_args.batch_size", "1",
        "--data.init_args.synthetic.num_videos", "4", "--data.init_args.synthetic.num_val_videos", "2",
        "--data.init_args.synthetic.num_frames", "10", "--data.init_args.synthetic.height", "64",
        "--data.init_args.synthetic.width", "64",
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_epochs", "1",
        "--trainer.check_val_every_n_epoch", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(tmp_path / "out"),
    ]
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, CI="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "-m", "vidseg_defvistr", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr
    (run,) = runs(uri, "defvistr")
    assert run.info.status == "FINISHED" and "val/ap" in run.data.metrics
