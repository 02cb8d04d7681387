"""``vidseg-spvos fit`` then ``predict`` on a tiny synthetic DAVIS set: MLflow run with val/jf and Table IV FLOPs,
valid DAVIS PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_test_stage import check_test_subcommand
from mlflow import MlflowClient
from PIL import Image

from vidseg_common.data.formats.png import read_index_png
from vidseg_spvos.cli import main

TINY_ARGS = ["--model.value_dim", "32", "--model.decoder_channels", "[32, 16, 16]",
             "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "2",
             "--data.init_args.crop_size", "[32, 32]",
             "--data.init_args.synthetic", '{"num_videos": 2, "num_val_videos": 1, "num_frames": 6, "height": 32, "width": 48}']


def test_fit_then_predict(tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    repo = Path(__file__).resolve().parents[2]
    common = ["-c", str(repo / "experiments/spvos/synthetic.yaml"), *TINY_ARGS,
              "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.default_root_dir", str(tmp_path / "out")]
    main(["fit", *common, "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
          "--trainer.log_every_n_steps", "1"])
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("spvos").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["gate"] == "triple" and run.data.params["strategy"] == "mixed"
    metrics = run.data.metrics
    assert 0.0 <= metrics["val/jf"] <= 1.0
    assert len(client.get_metric_history(run.info.run_id, "val/jf")) == 1
    assert metrics["val/gflops_q"] > 0 and metrics["val/gflops_m"] > 0 and metrics["val/gflops_d"] > 0
    split = [metrics[f"val/{k}_fraction"] for k in ("skip", "reuse", "compute")]
    assert sum(split) == pytest.approx(1.0)
    ckpt = run.data.tags["checkpoint/last"]
    assert Path(ckpt).is_file()

    main(["predict", *common, "--ckpt_path", ckpt])
    tested = check_test_subcommand(main, [*common, "--ckpt_path", ckpt], "spvos", mlflow_uri,
                                   ["test/jf", "test/j", "test/f", "test/compute_fraction"])
    assert tested["test/jf"] == pytest.approx(metrics["val/jf"])  # the same checkpoint on the same videos
    pngs = sorted((tmp_path / "out" / "predictions").glob("*/*.png"))
    assert len(pngs) == 6  # one per frame of the validation video, DAVIS layout <video>/<frame>.png
    assert pngs[0].name == "00000.png"
    with Image.open(pngs[0]) as image:
        assert image.mode == "P"  # indexed palette PNG, as davis2017-evaluation reads
    gt_dir = next((tmp_path / "cache").rglob(f"Annotations/480p/{pngs[0].parent.name}"))
    gt = read_index_png(gt_dir / "00000.png")
    ids = read_index_png(pngs[0])
    assert ids.shape == gt.shape == (32, 48)
    np.testing.assert_array_equal(ids, gt)  # frame 0 is the given annotation
    assert max(int(read_index_png(p).max()) for p in pngs) <= int(gt.max())
