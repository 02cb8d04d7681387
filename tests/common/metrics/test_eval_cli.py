"""`vidseg eval davis|youtube-vis` on the fixtures: official numbers, CSV/JSON output, bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidseg_common.data.formats.png import read_index_png, write_index_png
from vidseg_common.tools.main import main


def _davis(args: list[str], gt: Path, res: Path) -> int:
    return main(["eval", "davis", "--gt", str(gt), "--results", str(res), "--quiet", *args])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_eval_davis_matches_official(fixtures_root: Path, tmp_path: Path, workers: str) -> None:
    root = fixtures_root / "davis"
    out = tmp_path / "scores.json"
    assert _davis(["--workers", workers, "--json", str(out), "--csv", str(tmp_path)], root / "gt", root / "res") == 0
    got, expected = json.loads(out.read_text()), json.loads((root / "expected.json").read_text())
    for name, value in expected["global"].items():
        assert got["global"][name] == pytest.approx(value, abs=1e-9)
    assert got["per_object"].keys() == expected["per_object"].keys()
    csv = (tmp_path / "global_results-val.csv").read_text().splitlines()
    assert csv[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert float(csv[1].split(",")[0]) == pytest.approx(expected["global"]["J&F-Mean"], abs=5e-4)


def _copy_results(fixtures_root: Path, tmp_path: Path) -> Path:
    res = tmp_path / "res"
    shutil.copytree(fixtures_root / "davis" / "res", res)
    return res


def _break_rgb(res: Path) -> str:
    path = res / "seq01" / "00003.png"
    Image.fromarray(np.stack([read_index_png(path)] * 3, axis=-1)).save(path)
    return "00003.png: mask is a RGB image"


def _break_missing(res: Path) -> str:
    (res / "seq02" / "00004.png").unlink()
    return "seq02/00004.png: prediction frame missing"


def _break_extra(res: Path) -> str:
    shutil.copy(res / "seq02" / "00004.png", res / "seq02" / "00099.png")
    return "no ground-truth frame, e.g. 00099.png"


def _break_objects(res: Path) -> str:
    path = res / "seq00" / "00003.png"
    ids = read_index_png(path)
    ids[:4, :4] = 7
    write_index_png(path, ids)
    return "seq00: the prediction holds object id 7"


def _break_size(res: Path) -> str:
    path = res / "seq03" / "00002.png"
    write_index_png(path, read_index_png(path)[:-8])
    return "differs from the ground truth"


@pytest.mark.parametrize("breaker", [_break_rgb, _break_missing, _break_extra, _break_objects, _break_size])
def test_eval_davis_bad_input(
    fixtures_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], breaker: object
) -> None:
    res = _copy_results(fixtures_root, tmp_path)
    message = breaker(res)  # type: ignore[operator]
    assert _davis(["--workers", "1"], fixtures_root / "davis" / "gt", res) == 2
    assert message in capsys.readouterr().err


def test_eval_youtube_vis_matches_official(fixtures_root: Path, tmp_path: Path) -> None:
    root = fixtures_root / "ytvis"
    out = tmp_path / "ap.json"
    argv = ["eval", "youtube-vis", "--gt", str(root / "gt.json"), "--results", str(root / "results.json")]
    assert main([*argv, "--workers", "2", "--json", str(out), "--quiet"]) == 0
    got, expected = json.loads(out.read_text())["stats"], json.loads((root / "expected.json").read_text())["stats"]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_eval_youtube_vis_bad_results(fixtures_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fixtures_root / "ytvis"
    results = json.loads((root / "results.json").read_text())
    results[3]["segmentations"] = results[3]["segmentations"] + [None]
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps(results))
    argv = ["eval", "youtube-vis", "--gt", str(root / "gt.json"), "--results", str(bad), "--quiet"]
    assert main(argv) == 2
    assert f"results entry 3 (video {results[3]['video_id']})" in capsys.readouterr().err
