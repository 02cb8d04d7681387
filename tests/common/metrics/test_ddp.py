"""Two CPU processes (gloo) give the same numbers as one process, with uneven shards, padded-sampler
duplicates and an empty rank (docs/reference/ecosystem.md §2.4 pitfalls A, B, D)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


def _single_process(fixtures: Path) -> dict[str, dict[str, float]]:
    sys.path.insert(0, str(WORKER.parent))
    try:
        import ddp_worker  # the same code path with no process group: every video on "rank 0"
    finally:
        sys.path.remove(str(WORKER.parent))
    result = ddp_worker.run_metrics(0, fixtures)
    return {k: v for k, v in result.items() if k.endswith("/empty")}


def test_two_process_gloo_equals_single_process(fixtures_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(fixtures_root), str(out), str(rank), port],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    ddp = json.loads(out.read_text())
    single = _single_process(fixtures_root)
    for key, expected in single.items():
        for scenario in ("uneven", "empty"):
            got = ddp[key.replace("/empty", f"/{scenario}")]
            assert got.keys() == expected.keys()
            for name, value in expected.items():
                assert got[name] == pytest.approx(value, abs=1e-9), (key, scenario, name)
