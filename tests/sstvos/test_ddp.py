"""2-process CPU DDP smoke test of ``vidseg-sstvos fit`` (gloo), in a subprocess (Lightning's ddp launcher re-runs argv)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, CI="1", OMP_NUM_THREADS="1")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "vidseg_sstvos", "fit", "-c", str(repo / "experiments/_base/trainer_cpu.yaml"),
         "-c", str(repo / "experiments/sstvos/synthetic.yaml"), "--data.init_args.cache_dir", str(tmp_path / "cache"),
         "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "2", "--data.init_args.crop_size", "[64, 64]", "--data.init_args.repeat", "1",
         "--data.init_args.synthetic",
         '{"num_videos": 4, "num_val_videos": 2, "num_frames": 5, "height": 48, "width": 64, "full_occlusion": true}',
         "--model.embed_dim", "16", "--model.num_heads", "2", "--model.ffn_dim", "16", "--model.stage_channels", "[16, 16]",
         "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_epochs", "1",
         "--trainer.check_val_every_n_epoch", "1", "--trainer.default_root_dir", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sstvos").experiment_id])  # only rank 0 logs
    assert run.info.status == "FINISHED" and 0.0 <= run.data.metrics["val/jf"] <= 1.0
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 1  # 4 clips, batch 2, 2 ranks → 1 step per rank
