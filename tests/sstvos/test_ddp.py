"""2-process CPU DDP (gloo) smoke test of ``vidseg-sstvos fit`` (through :func:`ddp_fit.run_ddp_fit`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_fit import REPO, run_ddp_fit


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    run, last = run_ddp_fit("sstvos", [
        "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / "experiments/sstvos/synthetic.yaml"),
        "--data.init_args.batch_size", "2", "--data.init_args.crop_size", "[64, 64]", "--data.init_args.repeat", "1",
        "--data.init_args.synthetic",
        '{"num_videos": 4, "num_val_videos": 2, "num_frames": 5, "height": 48, "width": 64, "full_occlusion": true}',
        "--model.embed_dim", "16", "--model.num_heads", "2", "--model.ffn_dim", "16", "--model.stage_channels", "[16, 16]",
        "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
    ], tmp_path)
    assert 0.0 <= run.data.metrics["val/jf"] <= 1.0
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 1  # 4 clips, batch 2, 2 ranks → 1 step per rank
