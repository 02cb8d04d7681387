"""Must-show 2 of the foundation issue: a CLI fit on CPU records a complete MLflow run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_runner import BASE_ARGS, runs
from mlflow import MlflowClient
from tiny import main


def test_fit_records_mlflow_run(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  width: 6\n  optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n  scheduler: {name: poly, warmup_steps: 2}\n")
    main(["fit", "-c", str(config), *BASE_ARGS, "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(tmp_path / "out"),
          "--checkpoint.monitor", "val/iou", "--checkpoint.mode", "max"])

    (run,) = runs(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["width"] == "6" and params["optimizer/name"] == "sgd" and params["optimizer/lr"] == "0.05"
    assert params["scheduler/name"] == "poly" and params["batch_size"] == "4"  # model and data hparams
    assert len(client.get_metric_history(run.info.run_id, "val/iou")) == 3  # one value per epoch
    assert len(client.get_metric_history(run.info.run_id, "train/loss_epoch")) == 3
    assert run.data.metrics["model/params"] > 0
    tags = run.data.tags
    assert tags["paper"] == "tiny" and tags["dataset"] == "tiny" and tags["configs"].endswith("tiny.yaml")
    assert len(tags["git_commit"]) >= 7 or tags["git_commit"] == "unknown"
    best, last = Path(tags["checkpoint/best"]), Path(tags["checkpoint/last"])
    assert best.is_file() and last.name == "last.ckpt" and last.parent == tmp_path / "out" / "checkpoints"

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "config.yaml" in artifacts and "images" in artifacts
    config_text = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert "width: 6" in config_text and "max_epochs: 3" in config_text
    overlays = client.list_artifacts(run.info.run_id, "images")
    assert any("val~overlay" in a.path for a in overlays)

    checkpoint = torch.load(last, weights_only=True, map_location="cpu")  # no pickled objects in checkpoints
    assert checkpoint["global_step"] == 12 and checkpoint["hyper_parameters"]["optimizer"]["lr"] == 0.05

    # validate from the checkpoint: hyperparameters come back from it (width 6), a second run is logged, and
    # options given on the command line still win over the checkpoint's (sleep_s)
    cli = main(["validate", *BASE_ARGS, "--ckpt_path", str(last), "--trainer.default_root_dir", str(tmp_path / "out"),
                "--model.sleep_s", "0.01"])
    assert cli.model.hparams["width"] == 6 and cli.model.sleep_s == 0.01
    assert cli.model.optimizer_config.lr == 0.05  # nested settings restored from the checkpoint too
    validate_run = next(r for r in runs(mlflow_uri) if r.data.tags.get("stage") == "validate")
    assert validate_run.data.params["width"] == "6"
    assert validate_run.data.metrics["val/iou"] == pytest.approx(
        client.get_metric_history(run.info.run_id, "val/iou")[-1].value, abs=1e-6
    )


def test_benchmark_subcommand(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    main(["benchmark", "--trainer.accelerator", "cpu", "--batch_size", "2", "--num_frames", "3",
          "--height", "16", "--width", "16", "--iters", "2", "--warmup", "1"])
    (run,) = runs(mlflow_uri)
    metrics = run.data.metrics
    assert metrics["benchmark/params"] > 0 and metrics["benchmark/gflops"] > 0
    assert metrics["benchmark/fps"] == pytest.approx(3 * metrics["benchmark/clips_per_s"])
    assert run.data.tags["stage"] == "benchmark"
