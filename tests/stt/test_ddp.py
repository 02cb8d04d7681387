"""2-process CPU DDP (gloo) smoke test of ``vidseg-stt fit`` (through :func:`ddp_fit.run_ddp_fit`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_fit import REPO, run_ddp_fit


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    run, last = run_ddp_fit("stt", [
        "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / "experiments/stt/synthetic.yaml"),
        "--data.init_args.batch_size", "2", "--data.init_args.num_previous", "2",
        "--data.init_args.synthetic", '{"num_videos": 4, "num_val_videos": 2, "height": 32, "width": 64}',
        "--model.num_key_frames", "2", "--model.nsm_radius", "1",
        "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
    ], tmp_path)
    assert 0.0 <= run.data.metrics["val/miou"] <= 1.0
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 1  # 4 clips, batch 2, 2 ranks → 1 step per rank
