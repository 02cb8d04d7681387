"""``vidseg compare`` against a temporary sqlite store holding runs created with the MLflow client."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from mlflow.entities import Metric
from PIL import Image

RUNS = [
    # experiment, tags, metrics, (start ms, end ms)
    ("papers", {"paper": "sstvos", "dataset": "synthetic-davis", "configs": "experiments/_base/trainer_cpu.yaml,experiments/sstvos/synthetic.yaml",
                 "benchmark/input": "B=1 T=5 96x160 on cpu"},
     {"val/jf": 0.6543, "model/params": 12_345_678, "benchmark/gflops": 3.21, "benchmark/fps": 17.5, "time/fit_s": 125.0},
     (1_000, 900_000)),
    ("papers", {"paper": "stt", "dataset": "synthetic-cityscapes", "configs": "experiments/stt/synthetic.yaml"},
     {"val/miou": 0.7481, "val/tc": 0.3252, "model/params": 13_800_000}, (1_000, 273_000)),
    ("papers", {"paper": "defvistr", "dataset": "synthetic-youtube_vis", "configs": "experiments/defvistr/synthetic.yaml"},
     {"val/ap": 0.125, "benchmark/params": 2_000_000, "benchmark/gflops": 45.0, "benchmark/fps": 3.0}, (1_000, 62_000)),
    ("other", {"paper": "sstvos", "dataset": "davis", "configs": "experiments/sstvos/davis.yaml", "note": "long run"},
     {"val/jf": 0.801}, (1_000, 3_601_000)),
]


@pytest.fixture(scope="module")
def _store_template(_empty_store_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The runs of :data:`RUNS`, created once; returns (database file, {"<paper>/<experiment>": run id})."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("compare_store") / "mlflow.db"
    shutil.copyfile(_empty_store_template, path)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    ids = {}
    for experiment, tags, metrics, (start, end) in RUNS:
        found = client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(exp_id, start_time=start, tags=tags)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, start, 0) for k, v in metrics.items()])
        client.set_terminated(run.info.run_id, end_time=end)
        ids[f"{tags['paper']}/{experiment}"] = run.info.run_id
    return path, ids


@pytest.fixture
def store(_store_template: tuple[Path, dict[str, str]], tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A private copy of the populated store: (URI, run ids)."""
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copyfile(_store_template[0], path)
    return f"sqlite:///{path}", _store_template[1]


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows keyed by run id (last column), split on runs of 2+ spaces."""
    import re

    lines = [ln for ln in out.splitlines() if ln and not ln.startswith(("-", "paper", "wrote", "logged"))]
    return {cells[-1]: cells for cells in (re.split(r"\s{2,}", ln.strip()) for ln in lines)}


def test_table_has_metric_params_flops_fps_time(store, vidseg) -> None:
    uri, ids = store
    code, out, _ = vidseg("compare", "--tracking-uri", uri, "--no-log")
    assert code == 0
    rows = _rows(out)
    assert set(rows) == set(ids.values())
    assert rows[ids["sstvos/papers"]] == ["sstvos", "synthetic-davis", "sstvos/synthetic", "J&F", "0.6543", "-",
                                         "12.3", "3.21", "17.5", "2m05s", "FINISHED", ids["sstvos/papers"]]
    stt = rows[ids["stt/papers"]]
    assert stt[3:6] == ["mIoU", "0.7481", "0.3252"] and stt[6] == "13.8" and stt[9] == "4m32s"  # wall time
    vis = rows[ids["defvistr/papers"]]
    assert vis[3:9] == ["AP", "0.1250", "-", "2", "45", "3"]  # params from benchmark/params


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--experiment", "other"], ["sstvos/other"]),
        (["--paper", "sstvos"], ["sstvos/papers", "sstvos/other"]),
        (["--paper", "stt", "--paper", "defvistr"], ["stt/papers", "defvistr/papers"]),
        (["--dataset", "synthetic-davis"], ["sstvos/papers"]),
        (["--tag", "note=long run"], ["sstvos/other"]),
        (["--tag", "configs~=synthetic", "--experiment", "papers", "--paper", "stt"], ["stt/papers"]),
    ],
)
def test_filters(store, vidseg, filters, expected) -> None:
    uri, ids = store
    code, out, _ = vidseg("compare", "--tracking-uri", uri, "--no-log", *filters)
    assert code == 0
    assert set(_rows(out)) == {ids[name] for name in expected}


def test_csv_and_plot_written_and_logged(store, vidseg, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri, ids = store
    csv_path, png_path = tmp_path / "out" / "runs.csv", tmp_path / "out" / "plot.png"
    code, out, _ = vidseg("compare", "--tracking-uri", uri, "--experiment", "papers",
                          "--csv", csv_path, "--plot", png_path)
    assert code == 0
    with csv_path.open() as handle:
        rows = {row["run_id"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {ids["sstvos/papers"], ids["stt/papers"], ids["defvistr/papers"]}
    sst = rows[ids["sstvos/papers"]]
    assert float(sst["score"]) == 0.6543 and float(sst["gflops"]) == 3.21 and float(sst["train_time_s"]) == 125.0
    assert float(sst["params_m"]) == pytest.approx(12.345678) and sst["tc"] == "" and sst["experiment"] == "papers"
    assert sst["bench_input"] == "B=1 T=5 96x160 on cpu" and rows[ids["stt/papers"]]["bench_input"] == ""
    with Image.open(png_path) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 200
    assert not list(png_path.parent.glob(".*tmp*"))  # atomic writes leave no temporary file

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("compare")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.data.tags["vidseg.kind"] == "compare"
    assert sorted(a.path for a in client.list_artifacts(logged.info.run_id)) == ["compare.csv", "compare.png"]
    assert set(logged.data.tags["compared_runs"].split(",")) == set(rows)
    # the compare run itself never becomes a row
    code, out, _ = vidseg("compare", "--tracking-uri", uri, "--no-log")
    assert code == 0 and logged.info.run_id not in _rows(out) and len(_rows(out)) == len(RUNS)


def test_missing_store_is_one_line_exit_1_and_not_created(vidseg, tmp_path: Path) -> None:
    database = tmp_path / "nothing" / "mlflow.db"
    code, out, err = vidseg("compare", "--tracking-uri", f"sqlite:///{database}")
    assert code == 1 and err == ""
    assert out.strip() == f"vidseg compare: no MLflow store at {database} (nothing has been logged there yet)"
    assert not database.exists()


def test_empty_store_is_one_line_exit_1(empty_store, vidseg) -> None:
    code, out, err = vidseg("compare", "--tracking-uri", empty_store)
    assert code == 1 and err == "" and out.strip() == f"vidseg compare: no runs in {empty_store}"


def test_no_matching_run_is_one_line_exit_1(store, vidseg) -> None:
    uri, _ = store
    code, out, _ = vidseg("compare", "--tracking-uri", uri, "--paper", "spvos")
    assert code == 1 and out.strip() == f"vidseg compare: no run in {uri} matches paper=spvos"
    code, out, _ = vidseg("compare", "--tracking-uri", uri, "--experiment", "nope")
    assert code == 1 and out.strip() == f"vidseg compare: no experiment named 'nope' in {uri}"


def test_bad_tag_filter_is_a_usage_error(store, vidseg) -> None:
    code, _, err = vidseg("compare", "--tracking-uri", store[0], "--tag", "paper")
    assert code == 2 and "--tag 'paper': expected KEY=VALUE" in err
