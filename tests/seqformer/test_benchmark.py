"""``vidseg-seqformer benchmark`` (issue 9, must-show 4): params / FLOPs / fps of the tiny network in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from vidseg_seqformer.cli import main
from vidseg_seqformer.module import SeqFormerModule

MODEL = dict(backbone="test_resnet", frozen_backbone=[], num_classes=5, num_queries=4, hidden_dim=32, ffn_dim=64, dropout=0.0,
             num_encoder_layers=1, num_decoder_layers=2, num_heads=4, encoder_points=2, decoder_points=2)


def test_benchmark_subcommand_logs_params_flops_fps(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "bench.yaml"
    config.write_text("model:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in MODEL.items()))
    main(["benchmark", "-c", str(config), "--trainer.accelerator", "cpu", "--batch_size", "1", "--num_frames", "3",
          "--height", "64", "--width", "96", "--iters", "1", "--warmup", "0"])
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("seqformer").experiment_id])
    metrics = run.data.metrics
    expected_params = sum(p.numel() for p in SeqFormerModule(**MODEL).parameters())
    assert metrics["benchmark/params"] == expected_params
    assert metrics["benchmark/gflops"] > 0
    assert metrics["benchmark/fps"] == pytest.approx(3 * metrics["benchmark/clips_per_s"])
    report = json.loads(Path(client.download_artifacts(run.info.run_id, "benchmark.json", str(tmp_path))).read_text())
    assert report["uncounted_ops"] == []  # vidseg::ms_deform_attn declares its FLOPs
    assert (report["num_frames"], report["height"], report["width"]) == (3, 64, 96)
