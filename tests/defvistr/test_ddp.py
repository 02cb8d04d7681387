"""2-process CPU DDP (gloo) smoke of ``vidseg-defvistr fit``: the all-reduced box normaliser and VideoAP's
cross-process sync run (through :func:`ddp_fit.run_ddp_fit`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ddp_fit import REPO, run_ddp_fit


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    run, _ = run_ddp_fit("defvistr", [
        "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / "experiments/defvistr/synthetic.yaml"),
        "--model.hidden_dim", "48", "--model.num_encoder_layers", "1", "--model.num_decoder_layers", "1",
        "--model.dim_feedforward", "32", "--model.n_points", "2", "--model.num_frames", "2",
        "--data.init_args.num_frames", "2", "--data.init_args.batch_size", "1",
        "--data.init_args.synthetic.num_videos", "4", "--data.init_args.synthetic.num_val_videos", "2",
        "--data.init_args.synthetic.num_frames", "10", "--data.init_args.synthetic.height", "64",
        "--data.init_args.synthetic.width", "64",
        "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1", "--trainer.enable_progress_bar", "false",
    ], tmp_path)
    assert "val/ap" in run.data.metrics
