"""CLI smoke test: ``vidseg-seqformer fit`` then ``predict`` on a tiny synthetic YouTube-VIS set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_test_stage import check_test_subcommand
from mlflow import MlflowClient

from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results
from vidseg_seqformer.cli import main

CONFIG = """
seed_everything: 0
model:
  backbone: test_resnet
  frozen_backbone: []
  num_classes: 17
  num_queries: 4
  hidden_dim: 32
  ffn_dim: 64
  dropout: 0.0
  num_encoder_layers: 1
  num_decoder_layers: 2
  num_heads: 4
  encoder_points: 2
  decoder_points: 2
  top_k: 3
  bn_mode: train
data:
  class_path: vidseg_common.data.datamodules.vis.VISDataModule
  init_args:
    root: synthetic
    num_frames: 3
    short_side: null
    max_size: null
    eval_short_side: null
    batch_size: 2
    num_workers: 0
    synthetic: {num_videos: 2, num_val_videos: 1, num_frames: 15, height: 64, width: 96, max_objects: 2}
trainer:
  accelerator: cpu
  max_epochs: 1
  limit_train_batches: 2
  num_sanity_val_steps: 0
  enable_progress_bar: false
  log_every_n_steps: 1
"""


def test_fit_then_predict(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    config = tmp_path / "seqformer.yaml"
    config.write_text(CONFIG)
    common = ["-c", str(config), "--data.init_args.cache_dir", str(tmp_path / "cache"),
              "--trainer.default_root_dir", str(tmp_path / "out")]
    main(["fit", *common])

    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("seqformer").experiment_id])
    assert run.info.status == "FINISHED"
    for key in ("val/ap", "val/ap50", "val/ar10", "train/loss_epoch", "train/loss/dice", "train/loss/dice/aux0"):
        assert key in run.data.metrics
    assert 0.0 <= run.data.metrics["val/ap"] <= 1.0
    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    assert last.is_file()

    results = tmp_path / "predictions" / "results.json"
    main(["predict", *common, "--model.output_dir", str(results.parent), "--ckpt_path", str(last)])
    check_test_subcommand(main, [*common, "--ckpt_path", str(last)], "seqformer", mlflow_uri, ["test/ap", "test/ar10"])
    (gt_json,) = (tmp_path / "cache").rglob("valid.json")
    videos, categories = load_ground_truth(gt_json)
    detections = load_results(results, videos, categories)  # raises DataError on a malformed file
    data = json.loads(results.read_text())
    assert 1 <= len(data) <= 3  # top_k per video, one validation video
    (video_id,) = videos
    assert all(len(d["segmentations"]) == videos[video_id].length for d in data)
    assert len(detections[video_id].categories) == len(data)
