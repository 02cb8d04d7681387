"""JandF on the DAVIS fixture reproduces davis2017-evaluation's printed numbers to 1e-9."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vidseg_common.errors import DataError
from vidseg_common.metrics.davis_folder import davis_sequences, load_gt, load_prediction
from vidseg_common.metrics.jandf import JandF, score_video


def _feed(metric: JandF, root: Path, results: Path | None = None) -> None:
    for seq in davis_sequences(root / "gt"):
        gt, names = load_gt(root / "gt", seq)
        pred = gt if results is None else load_prediction(results, seq, names, gt.shape[1:], frozenset({0, len(names) - 1}))
        metric.update(torch.from_numpy(pred), torch.from_numpy(gt), seq)


def test_davis_fixture_parity(fixtures_root: Path) -> None:
    root = fixtures_root / "davis"
    expected = json.loads((root / "expected.json").read_text())
    metric = JandF()
    _feed(metric, root, root / "res")
    result = metric.compute()
    for name, value in expected["global"].items():
        assert float(result[name]) == pytest.approx(value, abs=1e-9), name
    per_object = metric.per_object_table()
    assert set(per_object) == set(expected["per_object"])
    for key, values in expected["per_object"].items():
        assert per_object[key]["J-Mean"] == pytest.approx(values["J-Mean"], abs=1e-9), key
        assert per_object[key]["F-Mean"] == pytest.approx(values["F-Mean"], abs=1e-9), key


def test_perfect_predictions_score_one(fixtures_root: Path) -> None:
    metric = JandF()
    _feed(metric, fixtures_root / "davis")
    result = metric.compute()
    for name in ("J&F-Mean", "J-Mean", "J-Recall", "F-Mean", "F-Recall"):
        assert float(result[name]) == 1.0
    assert float(result["J-Decay"]) == 0.0 and float(result["F-Decay"]) == 0.0


def test_duplicate_video_is_counted_once(fixtures_root: Path) -> None:
    root = fixtures_root / "davis"
    once, twice = JandF(), JandF()
    _feed(once, root, root / "res")
    _feed(twice, root, root / "res")
    _feed(twice, root, root / "res")
    assert {k: float(v) for k, v in once.compute().items()} == {k: float(v) for k, v in twice.compute().items()}


def test_more_objects_than_annotated_names_the_video() -> None:
    gt = torch.zeros(4, 8, 8, dtype=torch.uint8)
    gt[:, 2:4, 2:4] = 1
    pred = gt.clone()
    pred[2, 5:7, 5:7] = 2
    with pytest.raises(DataError, match="bear"):
        score_video(gt, pred, video="bear")


def test_unsupervised_matches_proposals_to_objects() -> None:
    gt = torch.zeros(3, 20, 20, dtype=torch.uint8)
    gt[:, 2:8, 2:8] = 1
    gt[:, 10:16, 10:16] = 2
    pred = torch.zeros_like(gt)  # ids swapped plus a spurious proposal: the matching undoes the swap
    pred[:, 2:8, 2:8] = 2
    pred[:, 10:16, 10:16] = 1
    pred[:, 0:1, 18:20] = 3
    objects, j, f = score_video(gt, pred, protocol="unsupervised")
    assert objects.tolist() == [1, 2]
    assert torch.all(j == 1) and torch.all(f == 1)


def test_davis_fixture_parity_torch_backend(fixtures_root: Path) -> None:
    """The torch path (what runs on GPU) gives the official numbers too."""
    root = fixtures_root / "davis"
    expected = json.loads((root / "expected.json").read_text())
    metric = JandF()
    for seq in davis_sequences(root / "gt"):
        gt, names = load_gt(root / "gt", seq)
        pred = load_prediction(root / "res", seq, names, gt.shape[1:], frozenset({0, len(names) - 1}))
        objects, j, f = score_video(torch.from_numpy(gt), torch.from_numpy(pred), seq, backend="torch")
        metric.add_scores(seq, objects, j, f)
    result = metric.compute()
    for name, value in expected["global"].items():
        assert float(result[name]) == pytest.approx(value, abs=1e-9), name
