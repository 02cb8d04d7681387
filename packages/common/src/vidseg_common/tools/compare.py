"""``vidseg compare``: a table of MLflow runs across papers, with CSV output and a metric-vs-cost plot.

Example::

    vidseg compare --experiment demo --csv outputs/demo/compare.csv --plot outputs/demo/compare.png
    vidseg compare --tracking-uri sqlite:////data/mlflow.db --paper stt --tag configs~=cityscapes

One row per run: paper, dataset, config (the last ``-c`` file), the main metric (``val/jf`` for VOS,
``val/ap`` for VIS, ``val/miou`` for VSS, plus ``val/tc`` where logged) at its *latest* logged value,
parameters (``model/params``), GFLOPs and frames/s (``benchmark/*``: logged by ``vidseg-<paper> benchmark``
or, for a training run, by :class:`~vidseg_common.engine.callbacks.BenchmarkOnFitEnd`), train time
(``time/fit_s`` if logged, else the run's wall time) and the run id; the CSV adds the experiment, run name
and the benchmark input size (tag ``benchmark/input``: FLOPs and fps depend on it).

With ``--plot`` the PNG is also logged to MLflow as the artifact ``compare.png`` (with ``compare.csv``) of a
new run named ``compare`` (tag ``vidseg.kind=compare``) in the experiment ``--log-experiment`` (default
``compare``) of the same store; such runs never appear in the table. ``--no-log`` skips it.

Exit codes: 0 the table was printed; 1 nothing to compare (the store does not exist, holds no runs, or no
run matches the filters), with one line saying which; 2 bad arguments or an unreadable store.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vidseg_common.errors import ConfigError, DataError

HELP = "compare MLflow runs across papers: table (metric, params, FLOPs, fps, train time), CSV, PNG plot"

MAIN_METRICS: tuple[tuple[str, str], ...] = (("val/jf", "J&F"), ("val/ap", "AP"), ("val/miou", "mIoU"))
"""(MLflow key, display name) of each task's main metric, in the order they are looked for."""
COMPARE_KIND_TAG = "vidseg.kind"
COLUMNS = ("paper", "dataset", "config", "metric", "score", "tc", "params_m", "gflops", "fps", "train_time_s",
           "status", "run_id", "experiment", "run_name", "bench_input")
HEADERS = ("paper", "dataset", "config", "metric", "score", "TC", "params (M)", "GFLOPs", "fps", "train time",
           "status", "run id")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or <repo>/mlflow.db)")
    parser.add_argument("--experiment", action="append", default=[], help="experiment name (repeatable; default: all)")
    parser.add_argument("--paper", action="append", default=[], help="keep runs tagged with this paper (repeatable)")
    parser.add_argument("--dataset", action="append", default=[], help="keep runs tagged with this dataset (repeatable)")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose tag KEY equals VALUE (KEY~=TEXT: contains TEXT); repeatable")
    parser.add_argument("--csv", type=Path, help="write the table (all columns) to this CSV file")
    parser.add_argument("--plot", type=Path, help="write the metric-vs-GFLOPs / metric-vs-fps plot to this PNG")
    parser.add_argument("--no-log", action="store_true", help="do not log the plot and CSV to MLflow")
    parser.add_argument("--log-experiment", default="compare", help="experiment of the 'compare' run (default compare)")
    parser.add_argument("--max-runs", type=int, default=1000, help="most runs read per experiment (default 1000)")


def parse_tags(items: list[str]) -> list[tuple[str, str, bool]]:
    """``["k=v", "k~=v"]`` → ``[(k, v, exact)]``; a malformed item raises :class:`ConfigError`."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag {item!r}: expected KEY=VALUE or KEY~=TEXT")
        exact = not key.endswith("~")
        out.append((key.rstrip("~"), value, exact))
    return out


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for other stores)."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def _config_name(configs: str | None, run_name: str) -> str:
    """``experiments/stt/synthetic.yaml,...`` → ``stt/synthetic`` (the last config file), else the run name."""
    files = [c for c in (configs or "").split(",") if c and c != "none"]
    if not files:
        return run_name
    path = Path(files[-1])
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def run_row(run: Any, experiment: str) -> dict[str, Any]:
    """One table row (see :data:`COLUMNS`) from an ``mlflow.entities.Run``."""
    metrics, tags, info = run.data.metrics, run.data.tags, run.info
    metric, score = next(((name, metrics[key]) for key, name in MAIN_METRICS if key in metrics), ("-", None))
    params = metrics.get("model/params", metrics.get("benchmark/params"))
    wall = (info.end_time - info.start_time) / 1000.0 if info.end_time and info.start_time else None
    run_name = info.run_name or tags.get("mlflow.runName", "")
    return {
        "paper": tags.get("paper", "-"),
        "dataset": tags.get("dataset", "-"),
        "config": _config_name(tags.get("configs"), run_name),
        "metric": metric,
        "score": score,
        "tc": metrics.get("val/tc"),
        "params_m": params / 1e6 if params is not None else None,
        "gflops": metrics.get("benchmark/gflops"),
        "fps": metrics.get("benchmark/fps"),
        "train_time_s": metrics.get("time/fit_s", wall),
        "status": info.status,
        "run_id": info.run_id,
        "experiment": experiment,
        "run_name": run_name,
        "bench_input": tags.get("benchmark/input"),
    }


def keep(run: Any, papers: list[str], datasets: list[str], tags: list[tuple[str, str, bool]]) -> bool:
    """Whether ``run`` passes the filters (and is not itself a ``compare`` run)."""
    run_tags = run.data.tags
    if run_tags.get(COMPARE_KIND_TAG) == "compare":
        return False
    if papers and run_tags.get("paper") not in papers:
        return False
    if datasets and run_tags.get("dataset") not in datasets:
        return False
    return all((run_tags.get(k) == v) if exact else (v in run_tags.get(k, "")) for k, v, exact in tags)


def _fmt(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column == "train_time_s":
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes}m{seconds:02d}s"
    if column in ("score", "tc"):
        return f"{value:.4f}"
    if column in ("params_m", "gflops", "fps"):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned plain-text table (the columns of :data:`HEADERS`)."""
    cells = [[_fmt(row[c], c) for c in COLUMNS[: len(HEADERS)]] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def collect_rows(uri: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of the runs that pass the filters, or ``([], reason)`` when there is nothing to compare."""
    from mlflow.exceptions import MlflowException

    tags = parse_tags(args.tag)
    try:
        client = _client(uri)
        experiments = {e.experiment_id: e.name for e in client.search_experiments(max_results=10000)}
        if args.experiment:
            missing = [n for n in args.experiment if n not in experiments.values()]
            if missing:
                return [], f"no experiment named {', '.join(map(repr, missing))} in {uri}"
            experiments = {i: n for i, n in experiments.items() if n in args.experiment}
        runs = [(run, name) for exp_id, name in experiments.items()
                for run in client.search_runs([exp_id], max_results=args.max_runs, order_by=["attributes.start_time ASC"])]
    except MlflowException as err:
        raise DataError(f"{uri}: cannot read the MLflow store ({str(err).splitlines()[0]})") from err
    if not any(run.data.tags.get(COMPARE_KIND_TAG) != "compare" for run, _ in runs):
        return [], f"no runs in {uri}" + (f" (experiment {', '.join(args.experiment)})" if args.experiment else "")
    rows = [run_row(run, name) for run, name in runs if keep(run, args.paper, args.dataset, tags)]
    if not rows:
        filters = [f"paper={p}" for p in args.paper] + [f"dataset={d}" for d in args.dataset] + args.tag
        return [], f"no run in {uri} matches {', '.join(filters)}"
    rows.sort(key=lambda r: (r["experiment"], r["paper"], r["config"]))
    return rows, None


def log_compare_run(uri: str, experiment: str, files: list[Path], rows: list[dict[str, Any]]) -> str:
    """Log ``files`` as artifacts of a new ``compare`` run; returns its run id.

    A new experiment of an sqlite store keeps its artifacts in ``<database folder>/mlruns/<experiment>``
    (for the repository's store, where :class:`~vidseg_common.engine.mlflow.VidSegMLFlowLogger` puts them).
    """
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        database = sqlite_path(uri)  # artifacts next to the database: <repo>/mlruns/<exp> for the default store
        location = (database.resolve().parent / "mlruns" / experiment).as_uri() if database else None
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    tags = {COMPARE_KIND_TAG: "compare", "compared_runs": ",".join(r["run_id"] for r in rows)[:5000]}
    run = client.create_run(experiment_id, run_name="compare", tags=tags)
    for path in files:
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def run(args: argparse.Namespace) -> int:
    from vidseg_common.engine.mlflow import default_tracking_uri
    from vidseg_common.io import atomic_write_text

    if args.max_runs < 1:
        raise ConfigError(f"--max-runs={args.max_runs} must be ≥ 1")
    uri = args.tracking_uri or default_tracking_uri()
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        print(f"vidseg compare: no MLflow store at {database} (nothing has been logged there yet)")
        return 1
    rows, reason = collect_rows(uri, args)
    if not rows:
        print(f"vidseg compare: {reason}")
        return 1
    print(format_table(rows))
    files: list[Path] = []
    if args.csv:
        atomic_write_text(args.csv, csv_text(rows))
        files.append(args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        from vidseg_common.viz.plot import PlotPoint, plot_comparison

        points = [PlotPoint(r["config"] if r["config"].startswith(r["paper"]) else f"{r['paper']} {r['config']}",
                            r["metric"], r["score"], r["gflops"], r["fps"]) for r in rows if r["score"] is not None]
        plot_comparison(points, args.plot, title=f"vidseg compare — {len(points)} run(s) with a main metric")
        files.append(args.plot)
        print(f"wrote {args.plot}")
    if args.plot and not args.no_log:
        with tempfile.TemporaryDirectory(prefix="vidseg-compare-") as folder:
            logged = [Path(folder) / f"compare{path.suffix}" for path in files]  # the artifact names
            for source, target in zip(files, logged):
                shutil.copyfile(source, target)
            run_id = log_compare_run(uri, args.log_experiment, logged, rows)
        print(f"logged {', '.join(p.name for p in logged)} to MLflow run {run_id} (experiment {args.log_experiment!r})")
    return 0
