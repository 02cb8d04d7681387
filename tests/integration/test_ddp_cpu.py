"""Must-show 3: ``--trainer.devices 2 --trainer.strategy ddp`` on CPU (gloo) runs through the CLI.

Run in a subprocess: under pytest, Lightning's ``ddp`` launcher would re-run the pytest command line in
the child process (docs/reference/ecosystem.md §2.3).
"""

from __future__ import annotations

from pathlib import Path

import torch
from cli_runner import BASE_ARGS, run_tiny, runs


def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    result = run_tiny(
        ["fit", *BASE_ARGS, "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_epochs", "2",
         "--trainer.default_root_dir", str(out)],
        uri,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr
    (run,) = runs(uri)  # only rank 0 logs: one run
    assert run.info.status == "FINISHED" and "val/iou" in run.data.metrics
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    # 16 clips, batch 4, 2 ranks → 2 steps per epoch per rank
    assert checkpoint["global_step"] == 4
