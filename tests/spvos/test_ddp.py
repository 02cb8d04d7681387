"""2-process CPU DDP (gloo) smoke test of ``vidseg-spvos fit`` (through :func:`ddp_fit.run_ddp_fit`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_fit import REPO, run_ddp_fit


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    run, last = run_ddp_fit("spvos", [
        "-c", str(REPO / "experiments/spvos/synthetic.yaml"),
        "--model.value_dim", "32", "--model.decoder_channels", "[32, 16, 16]",
        "--data.init_args.batch_size", "2", "--data.init_args.crop_size", "[32, 32]",
        "--data.init_args.synthetic", '{"num_videos": 4, "num_val_videos": 2, "num_frames": 6, "height": 32, "width": 48}',
        "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
    ], tmp_path)
    assert 0.0 <= run.data.metrics["val/jf"] <= 1.0
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 1  # 4 clips, batch 2, 2 ranks → 1 step per rank
