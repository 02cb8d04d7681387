"""CLI smoke: ``vidseg-defvistr fit`` on a tiny synthetic YouTube-VIS set logs val/ap to MLflow; ``predict``
from the checkpoint writes a results JSON that the official-format reader and ``VideoAP`` accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import runs
from cli_test_stage import check_test_subcommand
from pycocotools import mask as mask_utils

from vidseg_common.data.formats.youtube_vis import YouTubeVISReader
from vidseg_defvistr.cli import main

REPO = Path(__file__).resolve().parents[2]


def _args(tmp_path: Path) -> list[str]:
    return [
        "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / "experiments/defvistr/synthetic.yaml"),
        "--model.backbone", "resnet18", "--model.hidden_dim", "48", "--model.num_encoder_layers", "1",
        "--model.num_decoder_layers", "2", "--model.ffn_dim", "32", "--model.num_points", "2",
        "--model.num_frames", "2", "--data.init_args.num_frames", "2", "--data.init_args.num_workers", "0",
        "--data.init_args.cache_dir", str(tmp_path / "cache"),
        "--data.init_args.synthetic.num_videos", "2", "--data.init_args.synthetic.num_val_videos", "1",
        "--data.init_args.synthetic.num_frames", "15", "--data.init_args.synthetic.height", "64",
        "--data.init_args.synthetic.width", "64",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "out"),
    ]


@pytest.mark.slow  # ~25 s alone, ~55 s on the shared 2-core machine: over the default-run budget
def test_fit_then_predict(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    main(["fit", *_args(tmp_path), "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1"])
    (run,) = runs(mlflow_uri, "defvistr")
    assert run.info.status == "FINISHED"
    assert run.data.params["attention"] == "deformable"
    for key in ("val/ap", "val/ap50", "val/ap75", "val/ar1", "val/ar10", "train/loss_epoch"):
        assert key in run.data.metrics
    assert 0.0 <= run.data.metrics["val/ap"] <= 1.0
    last = Path(run.data.tags["checkpoint/last"])
    assert last.is_file()

    results = tmp_path / "predictions" / "results.json"
    main(["predict", *_args(tmp_path), "--ckpt_path", str(last), "--model.output_dir", str(results.parent)])
    check_test_subcommand(main, [*_args(tmp_path), "--ckpt_path", str(last)], "defvistr", mlflow_uri,
                          ["test/ap", "test/ap50", "test/ar10"])
    data = json.loads(results.read_text())
    root = next((tmp_path / "cache").rglob("valid.json")).parent
    reader = YouTubeVISReader(root / "valid.json", root / "valid/JPEGImages")
    assert isinstance(data, list) and len(data) <= 4 * len(reader.videos)  # at most N results per video
    for item in data:
        assert set(item) == {"video_id", "category_id", "score", "segmentations"}
        video = reader.videos[item["video_id"]]
        assert len(item["segmentations"]) == video["length"]
        assert 0.0 <= item["score"] <= 1.0 and 0 <= item["category_id"] < 17
        for seg in item["segmentations"]:
            if seg is not None:
                assert seg["size"] == [video["height"], video["width"]]
                assert mask_utils.area({"size": seg["size"], "counts": seg["counts"].encode()}) > 0
