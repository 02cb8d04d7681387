"""``experiments/demo.py --smoke`` end to end for one paper (slow: it trains; excluded from the default run)."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vidseg_stt") is None, reason="vidseg-stt is not installed")
def test_demo_smoke_trains_benchmarks_and_compares(tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "CI": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "demo.py"), "--smoke", "--papers", "stt",
                             "--out", str(tmp_path / "demo")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^\s+stt\s+ok\s", result.stdout, re.MULTILINE)  # the demo's status table
    with (tmp_path / "demo" / "compare.csv").open() as handle:
        rows = {row["paper"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"baseline", "stt"}
    assert rows["baseline"]["metric"] == "J&F" and 0.0 <= float(rows["baseline"]["score"]) <= 1.0
    assert rows["stt"]["metric"] == "mIoU" and rows["stt"]["status"] == "FINISHED"
    assert float(rows["stt"]["gflops"]) > 0 and float(rows["stt"]["fps"]) > 0 and float(rows["stt"]["train_time_s"]) > 0
    assert (tmp_path / "demo" / "compare.png").stat().st_size > 0
