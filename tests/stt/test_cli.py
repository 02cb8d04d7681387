"""``vidseg-stt fit`` on a tiny synthetic Cityscapes-layout set records an MLflow run with ``val/miou``, the
mIoU of corrupted annotated frames and the TC of streamed predictions; ``predict`` writes label PNGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_test_stage import check_test_subcommand
from mlflow import MlflowClient

from vidseg_common.data.formats.png import read_index_png
from vidseg_stt.cli import main


def test_fit_then_predict(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    repo = Path(__file__).resolve().parents[2]
    data_args = ["-c", str(repo / "experiments/_base/trainer_cpu.yaml"), "-c", str(repo / "experiments/stt/synthetic.yaml"),
                 "--data.init_args.cache_dir", str(tmp_path / "cache"), "--data.init_args.num_workers", "0",
                 "--data.init_args.batch_size", "2", "--data.init_args.num_previous", "2",
                 "--data.init_args.synthetic", '{"num_videos": 2, "num_val_videos": 1, "height": 36, "width": 60, "corruption_prob": 1.0}', "--data.init_args.pad_divisor", "8"]
    main(["fit", *data_args, "--model.num_key_frames", "2", "--model.nsm_radius", "1",
          "--trainer.max_steps", "2", "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1", "--trainer.check_val_every_n_epoch", "1",
          "--trainer.default_root_dir", str(tmp_path / "out")])
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("stt").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["use_stt"] == "True" and run.data.params["num_key_frames"] == "2"
    assert 0.0 <= run.data.metrics["val/miou"] <= 1.0
    # every frame is corrupted: the corrupted subset is the whole split, there is no clean subset
    assert run.data.metrics["val/miou_corrupted"] == run.data.metrics["val/miou"]
    assert "val/miou_clean" not in run.data.metrics
    assert 0.0 <= run.data.metrics["val/tc"] <= 1.0  # DIS flow over the 30 streamed frames of the val snippet
    assert len(client.get_metric_history(run.info.run_id, "train/loss_step")) == 2
    assert len(client.get_metric_history(run.info.run_id, "val/miou")) == 2
    assert Path(run.data.tags["checkpoint/last"]).is_file()

    # predict from the checkpoint: one trainId PNG per annotated val frame, at the frame size (padding cropped)
    main(["predict", *data_args, "--ckpt_path", run.data.tags["checkpoint/last"],
          "--trainer.default_root_dir", str(tmp_path / "out")])
    tested = check_test_subcommand(main, [*data_args, "--ckpt_path", run.data.tags["checkpoint/last"],
                                          "--trainer.default_root_dir", str(tmp_path / "out")],
                                   "stt", mlflow_uri, ["test/miou", "test/tc", "test/miou_corrupted"])
    assert tested["test/miou"] == pytest.approx(run.data.metrics["val/miou"])  # val and test: the same split here
    (png,) = (tmp_path / "out" / "predictions").glob("*.png")
    assert png.name == "frankfurt_000000_000019.png"
    ids = read_index_png(png)
    assert ids.shape == (36, 60) and int(ids.max()) < 19
