"""Must-show 4: SIGKILL mid-epoch, then ``--ckpt_path last`` continues from the saved step (same MLflow run)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from cli_runner import BASE_ARGS, run_tiny, runs, start_tiny

STEPS_PER_EPOCH = 8  # 32 clips, batch 4


def _saved_step(path: Path) -> int:
    return int(torch.load(path, weights_only=True, map_location="cpu")["global_step"])


def test_kill_and_resume(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    starts = tmp_path / "starts.txt"
    args = ["fit", *BASE_ARGS, "--data.num_train", "32", "--trainer.max_epochs", "2",
            "--trainer.default_root_dir", str(out), "--last_checkpoint.every_n_train_steps", "3",
            "--model.start_step_file", str(starts)]
    last = out / "checkpoints" / "last.ckpt"

    process = start_tiny([*args, "--model.sleep_s", "0.4"], uri, tmp_path)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if last.exists() and _saved_step(last) >= 3:
                break
            time.sleep(0.2)
        assert process.poll() is None, f"training ended before it could be killed:\n{process.communicate()[0][-3000:]}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    saved = _saved_step(last)
    assert 3 <= saved < 2 * STEPS_PER_EPOCH  # killed mid-run, after a step-based save

    result = run_tiny([*args, "--ckpt_path", "last"], uri, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert starts.read_text().split() == ["0", str(saved)]  # the second run started at the saved step
    assert _saved_step(last) == 2 * STEPS_PER_EPOCH
    (run,) = runs(uri)  # the resumed fit continued the same MLflow run
    assert run.info.status == "FINISHED"
