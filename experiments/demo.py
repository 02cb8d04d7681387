"""``make demo``: train every installed paper on its synthetic set, score a baseline, compare all in MLflow.

Steps (progress lines say which step is running and the elapsed time):

1. the synthetic datasets of every installed paper's ``experiments/<paper>/synthetic.yaml`` are generated
   (once; through the config's own DataModule, into the same cache the training runs read);
2. the "copy the first-frame mask" VOS baseline is written for the DAVIS-layout validation videos, scored
   by ``vidseg eval davis`` and logged as a run (paper ``baseline``), with ``vidseg visualize`` overlays;
3. for each installed paper (sstvos, spvos, defvistr, seqformer, stt)::

       vidseg-<paper> fit -c experiments/_base/trainer_cpu.yaml -c experiments/_base/mlflow.yaml \\
           -c experiments/<paper>/synthetic.yaml  <the demo budget of DEMO_BUDGETS>

   in the MLflow experiment ``demo`` (tag ``demo_session`` = this invocation), with
   :class:`~vidseg_common.engine.callbacks.BenchmarkOnFitEnd` so that params / FLOPs / fps are logged into the
   run. A paper that fails is reported (with the last error line; full log in ``outputs/demo/<paper>.log``)
   and the others still run; a paper that is not installed is listed as such;
4. ``vidseg compare --experiment demo --tag demo_session=…`` prints one table and writes
   ``outputs/demo/compare.csv`` and ``compare.png``.

The demo budgets are short (one validation at the end of a few epochs) so that the five papers fit in about
20 minutes on 2 CPU cores: the numbers show that each pipeline trains, validates, benchmarks and logs, not
the papers' accuracy (see each synthetic.yaml for the longer budget it was tuned with).
MLflow store: ``$MLFLOW_TRACKING_URI`` if set, else ``<repo>/mlflow.db``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import importlib.util
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ("sstvos", "spvos", "defvistr", "seqformer", "stt")

DEMO_BUDGETS: dict[str, list[str]] = {
    # a few epochs, validation (whole videos, the paper's metric) once at the end; ~2-4 min each on 2 busy cores
    "sstvos": ["--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "2"],
    "spvos": ["--trainer.max_epochs", "8", "--trainer.check_val_every_n_epoch", "8"],
    "defvistr": ["--trainer.max_epochs", "5", "--trainer.check_val_every_n_epoch", "5"],
    "seqformer": ["--trainer.max_epochs", "5", "--trainer.check_val_every_n_epoch", "5"],
    "stt": ["--trainer.max_epochs", "5", "--trainer.check_val_every_n_epoch", "5"],
}
"""Per-paper CLI overrides of the demo budget (added after the config files, so they win)."""

BENCHMARK_FRAMES: dict[str, int] = {"sstvos": 5, "spvos": 5, "defvistr": 4, "seqformer": 3, "stt": 4}
"""Clip length T of the end-of-fit benchmark (each model's training clip; DefVisTR's must equal model.num_frames)."""


def benchmark_size(paper: str) -> tuple[int, int]:
    """(height, width) of the end-of-fit benchmark: the frame size of the config's synthetic set."""
    import yaml

    synthetic = yaml.safe_load(paper_config(paper).read_text())["data"]["init_args"].get("synthetic") or {}
    return int(synthetic.get("height", 96)), int(synthetic.get("width", 160))


class Clock:
    """Elapsed time since the demo started, as ``12m05s``."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __str__(self) -> str:
        return _duration(time.perf_counter() - self.start)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def installed(paper: str) -> bool:
    """Whether ``vidseg_<paper>`` is importable and runnable as ``python -m vidseg_<paper>``."""
    return importlib.util.find_spec(f"vidseg_{paper}.__main__") is not None


def stream(command: list[str], log_path: Path, env: dict[str, str], label: str, clock: Clock,
           heartbeat_s: float = 30.0) -> tuple[int, str]:
    """Run ``command``, echo its output live (and a heartbeat line when it is quiet), keep it in ``log_path``.

    Returns (exit code, the last output line that mentions an error, else the last line).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail, start = b"", time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], heartbeat_s)
            if not ready:
                print(f"  … {label} running for {_duration(time.perf_counter() - start)} ({clock} elapsed)", flush=True)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            log.write(chunk)
            tail = (tail + chunk)[-20000:]
        code = process.wait()
    lines = [ln.strip() for ln in tail.decode(errors="replace").replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "exception" in ln.lower()]
    return code, (errors or lines or ["(no output)"])[-1][:300]


@contextlib.contextmanager
def maybe_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (to serialise timed runs on a shared machine), or nothing."""
    if path is None:
        yield
        return
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"  waiting for the lock {path} …", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _vidseg(*args: str) -> None:
    print("$ vidseg " + " ".join(args), flush=True)
    if subprocess.run([sys.executable, "-m", "vidseg_common.tools.main", *args], cwd=ROOT).returncode != 0:
        raise RuntimeError(f"`vidseg {args[0]}` failed (see the message above)")


def paper_config(paper: str) -> Path:
    return ROOT / "experiments" / paper / "synthetic.yaml"


def generate_datasets(papers: list[str]) -> dict[str, Path]:
    """Generate (or find cached) the synthetic set of each paper's config; ``{paper: dataset root}``."""
    import yaml

    from vidseg_common.data.synthetic.cache import synthetic_root

    roots: dict[str, Path] = {}
    for paper in papers:
        data = yaml.safe_load(paper_config(paper).read_text()).get("data", {})
        module_name, _, class_name = data["class_path"].rpartition(".")
        datamodule_class = getattr(importlib.import_module(module_name), class_name)
        datamodule = datamodule_class(**data.get("init_args", {}))
        start = time.perf_counter()
        roots[paper] = synthetic_root(datamodule.synthetic)
        print(f"  {paper}: {datamodule.synthetic.layout} set at {roots[paper]} ({time.perf_counter() - start:.1f} s)",
              flush=True)
    return roots


def copy_first_frame(gt_root: Path, out: Path, videos: list[str]) -> None:
    """Predict every frame as the first frame's annotation (the usual lower bound of semi-supervised VOS)."""
    from vidseg_common.data.formats.png import read_index_png, write_index_png

    for video in videos:
        frames = sorted((gt_root / "Annotations" / "480p" / video).glob("*.png"))
        first = read_index_png(frames[0])
        for frame in frames:
            write_index_png(out / video / frame.name, first)


def run_baseline(davis_root: Path, out: Path, session: str) -> None:
    """Copy-first-frame predictions on the DAVIS-layout val split, scored, visualised and logged to MLflow."""
    import mlflow

    predictions, scores = out / "copy_first_frame", out / "copy_first_frame.json"
    videos = (davis_root / "ImageSets" / "2017" / "val.txt").read_text().split()
    copy_first_frame(davis_root, predictions, videos)
    _vidseg("eval", "davis", "--gt", str(davis_root), "--results", str(predictions), "--json", str(scores), "--quiet")
    _vidseg("visualize", "vos", "--pred", str(predictions), "--images", str(davis_root), "--out", str(out / "viz"),
            "--max-videos", "2")
    summary = json.loads(scores.read_text())["global"]
    from vidseg_common.engine.mlflow import default_tracking_uri

    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment("demo")
    tags = {"paper": "baseline", "dataset": "synthetic-davis", "configs": "baseline/copy_first_frame",
            "demo_session": session, "stage": "eval"}
    with mlflow.start_run(run_name="copy-first-frame", tags=tags):
        mlflow.log_metrics({"val/jf": summary["J&F-Mean"], "val/j_mean": summary["J-Mean"],
                            "val/f_mean": summary["F-Mean"]})
        mlflow.log_artifact(str(scores))
        for sheet in sorted((out / "viz").glob("*_sheet.png")):
            mlflow.log_artifact(str(sheet), artifact_path="overlays")
    print(f"  baseline J&F = {summary['J&F-Mean']:.4f} on {len(videos)} videos")


SMOKE_BUDGET = ["--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
                "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
"""``--smoke``: the whole pipeline in seconds per paper (the numbers mean nothing)."""


def train_paper(paper: str, out: Path, session: str, env: dict[str, str], lock: Path | None, clock: Clock,
                smoke: bool = False) -> tuple[str, str]:
    """``vidseg-<paper> fit`` with the demo budget (or :data:`SMOKE_BUDGET`); returns (status, detail)."""
    frames, (height, width) = BENCHMARK_FRAMES[paper], benchmark_size(paper)
    command = [
        sys.executable, "-m", f"vidseg_{paper}", "fit",
        "-c", "experiments/_base/trainer_cpu.yaml", "-c", "experiments/_base/mlflow.yaml",
        "-c", str(paper_config(paper).relative_to(ROOT)),
        "--trainer.logger.init_args.experiment_name", "demo",
        "--trainer.logger.init_args.run_name", f"{paper}-demo",
        "--trainer.logger.init_args.tags", json.dumps({"demo_session": session}),
        "--trainer.default_root_dir", str(out / paper),
        "--trainer.callbacks+=vidseg_common.engine.callbacks.BenchmarkOnFitEnd",
        "--trainer.callbacks.init_args.num_frames", str(frames),
        "--trainer.callbacks.init_args.height", str(height),
        "--trainer.callbacks.init_args.width", str(width),
        *(SMOKE_BUDGET if smoke else DEMO_BUDGETS.get(paper, [])),
    ]
    print("$ " + " ".join(command[2:]).replace(f"vidseg_{paper} ", f"vidseg-{paper} ", 1), flush=True)
    start = time.perf_counter()
    with maybe_lock(lock):
        code, last_error = stream(command, out / f"{paper}.log", env, paper, clock)
    took = _duration(time.perf_counter() - start)
    return ("ok", took) if code == 0 else ("failed", f"{took}, exit {code}: {last_error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "demo")
    parser.add_argument("--papers", nargs="+", choices=PAPERS, default=list(PAPERS), help="subset to train")
    parser.add_argument("--lock", type=Path, help="flock this file around each training run (shared machines)")
    parser.add_argument("--smoke", action="store_true",
                        help="2 training batches and 1 validation batch per paper instead of the demo budget (tests)")
    args = parser.parse_args(argv)

    clock, session = Clock(), time.strftime("%Y%m%dT%H%M%S")
    present = [p for p in args.papers if installed(p)]
    results: dict[str, tuple[str, str]] = {p: ("not installed", f"pip install -e packages/{p}")
                                           for p in args.papers if p not in present}
    for paper in list(present):
        if not paper_config(paper).is_file():
            results[paper] = ("failed", f"{paper_config(paper).relative_to(ROOT)} not found")
            present.remove(paper)
    steps = 3 + len(present)
    print(f"[1/{steps}] synthetic datasets ({clock}); papers installed: {', '.join(present) or 'none'}", flush=True)
    roots = generate_datasets(present)
    vos = next((roots[p] for p in ("sstvos", "spvos") if p in roots), None)
    if vos is None:
        vos = args.out / "davis"
        _vidseg("synth", str(vos), "--layout", "davis", "--num-videos", "0", "--num-val-videos", "6",
                "--num-frames", "20", "--height", "96", "--width", "160", "--full-occlusion", "--no-write-flow")
    print(f"[2/{steps}] copy-first-frame baseline on {vos} ({clock})", flush=True)
    run_baseline(vos, args.out, session)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    for index, paper in enumerate(present, start=3):
        print(f"\n[{index}/{steps}] training {paper} ({clock} elapsed)", flush=True)
        results[paper] = train_paper(paper, args.out, session, env, args.lock, clock, args.smoke)
        print(f"  {paper}: {results[paper][0]} ({results[paper][1]}); {clock} elapsed", flush=True)

    print(f"\n[{steps}/{steps}] comparison ({clock} elapsed)\n")
    width = max(len(p) for p in PAPERS)
    for paper in args.papers:
        status, detail = results[paper]
        print(f"  {paper:<{width}}  {status:<13}  {detail}")
    print()
    _compare = [sys.executable, "-m", "vidseg_common.tools.main", "compare", "--experiment", "demo",
                "--tag", f"demo_session={session}", "--csv", str(args.out / "compare.csv"),
                "--plot", str(args.out / "compare.png")]
    code = subprocess.run(_compare, cwd=ROOT).returncode
    print(f"\ndemo finished in {clock}; browse the runs with: mlflow ui --backend-store-uri sqlite:///mlflow.db")
    failed = [p for p, (status, _) in results.items() if status == "failed"]
    return 1 if failed or code != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
