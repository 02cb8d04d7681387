"""``vidseg-sstvos fit`` on a tiny synthetic DAVIS set records an MLflow run with ``val/jf``; ``predict`` writes
DAVIS-layout palette PNGs that ``vidseg eval davis``'s folder scorer reads; ``benchmark`` prints params / FLOPs / fps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_test_stage import check_test_subcommand
from mlflow import MlflowClient
from PIL import Image

from vidseg_common.data.formats.png import read_index_png
from vidseg_common.metrics.davis_folder import load_prediction
from vidseg_sstvos.cli import main

TINY_MODEL = ["--model.hidden_dim", "16", "--model.num_heads", "2", "--model.ffn_dim", "16", "--model.pre_dim", "8",
              "--model.stage_channels", "[16, 16]", "--model.aspp_channels", "16", "--model.decoder_channels", "16"]


def test_fit_predict_benchmark(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    repo = Path(__file__).resolve().parents[2]
    data_args = ["-c", str(repo / "experiments/_base/trainer_cpu.yaml"), "-c", str(repo / "experiments/sstvos/synthetic.yaml"),
                 "--data.init_args.cache_dir", str(tmp_path / "cache"), "--data.init_args.num_workers", "0",
                 "--data.init_args.batch_size", "2", "--data.init_args.crop_size", "[64, 64]", "--data.init_args.repeat", "1",
                 "--data.init_args.synthetic",
                 '{"num_videos": 2, "num_val_videos": 1, "num_frames": 5, "height": 48, "width": 64, "full_occlusion": true}']
    out = tmp_path / "out"
    main(["fit", *data_args, *TINY_MODEL, "--trainer.max_steps", "2", "--trainer.max_epochs", "2",
          "--trainer.log_every_n_steps", "1", "--trainer.check_val_every_n_epoch", "1", "--trainer.default_root_dir", str(out)])
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sstvos").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["attention"] == "local" and run.data.params["history"] == "3"
    assert 0.0 <= run.data.metrics["val/jf"] <= 1.0 and 0.0 <= run.data.metrics["val/j"] <= 1.0
    assert len(client.get_metric_history(run.info.run_id, "train/loss_step")) == 2
    assert Path(run.data.tags["checkpoint/last"]).is_file()

    main(["predict", *data_args, *TINY_MODEL, "--ckpt_path", run.data.tags["checkpoint/last"], "--trainer.default_root_dir", str(out)])
    check_test_subcommand(main, [*data_args, *TINY_MODEL, "--ckpt_path", run.data.tags["checkpoint/last"],
                                 "--trainer.default_root_dir", str(out)], "sstvos", mlflow_uri, ["test/jf", "test/j", "test/f"])
    gt_root = next((tmp_path / "cache").glob("synthetic/*"))
    (video,) = (gt_root / "ImageSets/2017/val.txt").read_text().split()
    gt_pngs = sorted((gt_root / "Annotations/480p" / video).glob("*.png"))
    pngs = sorted((out / "predictions" / video).glob("*.png"))
    assert [p.name for p in pngs] == [p.name for p in gt_pngs] and len(pngs) == 5
    for png in pngs:
        with Image.open(png) as image:
            assert image.mode == "P"  # palette PNG as DAVIS
        ids = read_index_png(png)
        assert ids.shape == (48, 64) and int(ids.max()) <= int(read_index_png(gt_pngs[0]).max())
    assert np.array_equal(read_index_png(pngs[0]), read_index_png(gt_pngs[0]))  # frame 0 = ground truth

    scored = load_prediction(out / "predictions", video, [p.stem for p in gt_pngs], (48, 64))  # `vidseg eval davis` reader
    assert scored.shape == (5, 48, 64)

    main(["benchmark", "-c", str(repo / "experiments/_base/trainer_cpu.yaml"), "-c", str(repo / "experiments/sstvos/synthetic.yaml"),
          *TINY_MODEL, "--num_frames", "3", "--height", "64", "--width", "64", "--warmup", "1", "--iters", "1"])
    bench = [r for r in client.search_runs([client.get_experiment_by_name("sstvos").experiment_id])
             if r.data.tags.get("stage") == "benchmark"]
    assert len(bench) == 1
    metrics = bench[0].data.metrics
    assert metrics["benchmark/params"] > 1e6 and metrics["benchmark/gflops"] > 0
    assert metrics["benchmark/fps"] == pytest.approx(3 * metrics["benchmark/clips_per_s"])
