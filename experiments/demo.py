"""``make demo``: the end-to-end path that exists today, on a fresh clone, in about a minute.

1. ``vidseg synth``: a small synthetic DAVIS-2017 dataset (full occlusions, camera motion, corruption bursts);
2. a "copy the first-frame mask" baseline writes DAVIS-layout predictions for the val split;
3. ``vidseg eval davis`` scores them with the official-parity J&F;
4. the score is logged to MLflow (the repository's sqlite store) and printed as a table.

Paper training joins this script as the paper packages land (issue "experiments: make demo").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _vidseg(*args: str) -> None:
    command = [sys.executable, "-m", "vidseg_common.tools.main", *args]
    print("$ vidseg " + " ".join(args), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"demo: `vidseg {args[0]}` failed (see the message above)")


def copy_first_frame(gt_root: Path, out: Path, videos: list[str]) -> None:
    """Predict every frame as the first frame's annotation (the usual lower bound of semi-supervised VOS)."""
    from vidseg_common.data.formats.png import read_index_png, write_index_png

    for video in videos:
        frames = sorted((gt_root / "Annotations" / "480p" / video).glob("*.png"))
        first = read_index_png(frames[0])
        for frame in frames:
            write_index_png(out / video / frame.name, first)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "demo")
    parser.add_argument("--videos", type=int, default=6, help="validation videos to generate")
    args = parser.parse_args(argv)

    data, predictions, scores = args.out / "davis", args.out / "copy_first_frame", args.out / "copy_first_frame.json"
    _vidseg("info")
    _vidseg("synth", str(data), "--layout", "davis", "--num-videos", "2", "--num-val-videos", str(args.videos),
            "--num-frames", "24", "--height", "240", "--width", "432", "--full-occlusion", "--seed", "0")
    videos = (data / "ImageSets" / "2017" / "val.txt").read_text().split()
    copy_first_frame(data, predictions, videos)
    _vidseg("eval", "davis", "--gt", str(data), "--results", str(predictions), "--json", str(scores))

    import mlflow

    from vidseg_common.engine.mlflow import default_tracking_uri

    summary = json.loads(scores.read_text())
    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment("demo")
    with mlflow.start_run(run_name="copy-first-frame", tags={"paper": "baseline", "dataset": "synthetic-davis"}):
        flat = {k: v for k, v in _numbers(summary).items()}
        mlflow.log_metrics({_metric_name(k): v for k, v in flat.items()})
    print(f"\nlogged to MLflow at {default_tracking_uri()} (experiment 'demo'); browse with:")
    print("  mlflow ui --backend-store-uri sqlite:///mlflow.db")
    return 0


def _numbers(tree: object, prefix: str = "") -> dict[str, float]:
    """Top-level numeric entries of the eval JSON's global table (nested dicts flattened with '/')."""
    out: dict[str, float] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in ("per_object", "per_sequence", "sequences"):
                continue
            out.update(_numbers(value, f"{prefix}{key}/"))
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        out[prefix.rstrip("/")] = float(tree)
    return out


def _metric_name(key: str) -> str:
    return key.replace("J&F", "jf").replace("&", "and").replace(" ", "_").lower()


if __name__ == "__main__":
    raise SystemExit(main())
