"""VideoAP against youtubevos/cocoapi: the ytvis fixture (to 1e-9), the docs/reference/vis.md §4.5 toy, bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from vidseg_common.errors import DataError
from vidseg_common.metrics.vis import STAT_NAMES, VideoAP, sequence_ious
from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results


def _score(gt: object, results: object) -> dict[str, float]:
    videos, categories = load_ground_truth(gt)
    dets = load_results(results, videos, categories)
    metric = VideoAP()
    for vid in videos:
        metric.update(dets[vid], videos[vid])
    return {k: float(v) for k, v in metric.compute().items()}


def test_ytvis_fixture_parity(fixtures_root: Path) -> None:
    root = fixtures_root / "ytvis"
    expected = json.loads((root / "expected.json").read_text())
    assert tuple(expected["order"]) == STAT_NAMES
    stats = _score(root / "gt.json", root / "results.json")
    for name in STAT_NAMES:
        assert stats[name] == pytest.approx(expected["stats"][name], abs=1e-9), name


def test_result_order_does_not_change_ap(fixtures_root: Path) -> None:
    root = fixtures_root / "ytvis"
    results = json.loads((root / "results.json").read_text())
    baseline = _score(root / "gt.json", results)
    scores = [r["score"] for r in results]
    assert len(set(scores)) == len(scores)  # no ties, so any order must give the same numbers
    random.Random(0).shuffle(results)
    assert _score(root / "gt.json", results) == baseline


def _box(x: int, y: int, height: int = 20, width: int = 30) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[y : y + 10, x : x + 10] = True
    return mask


def test_golden_toy() -> None:
    """docs/reference/vis.md §4.5: H=20, W=30, T=4, categories {1, 2}."""
    empty = torch.zeros(20, 30, dtype=torch.bool)
    gt_a = torch.stack([_box(0, 0), _box(1, 0), _box(2, 0), empty])
    gt_b = torch.stack([empty, _box(15, 5), _box(15, 5), _box(16, 5)])
    target = {
        "masks": torch.stack([gt_a, gt_b]),
        "labels": torch.tensor([1, 2]),
        "valid": torch.tensor([[True, True, True, False], [False, True, True, True]]),
    }
    det_a = torch.stack([_box(0, 0), _box(1, 0), _box(3, 0), _box(3, 0)])
    disjoint = torch.stack([_box(20, 10)] * 4)
    preds = {"masks": torch.stack([det_a, gt_b, disjoint]), "scores": torch.tensor([0.9, 0.8, 0.3]),
             "labels": torch.tensor([1, 2, 1])}  # fmt: skip
    metric = VideoAP()
    metric.update(preds, target, video_id=1)
    stats = {k: float(v) for k, v in metric.compute().items()}
    expected = {"AP": 0.75, "AP50": 1.0, "AP75": 0.5, "APs": 0.75, "APm": -1.0, "APl": -1.0, "AR1": 0.75, "AR10": 0.75}
    for name, value in expected.items():
        assert stats[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools.mask.decode under numpy 2
def test_sequence_iou_equals_dense_definition() -> None:
    """Random 6-frame sequences with absent frames: RLE path == numpy definition of iou_seq."""
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(7):
        masks = rng.random((6, 12, 9)) > 0.6
        present = rng.random(6) > 0.3
        seqs.append([mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) if p else None for m, p in zip(masks, present)])
    dts, gts = seqs[:4], seqs[4:]
    got = sequence_ious(dts, gts)

    def dense(seq: list) -> list:
        return [None if r is None else mask_utils.decode(r).astype(bool) for r in seq]

    for i, d in enumerate(dts):
        for j, g in enumerate(gts):
            inter = union = 0
            for dm, gm in zip(dense(d), dense(g)):
                if dm is not None and gm is not None:
                    inter += (dm & gm).sum()
                    union += (dm | gm).sum()
                elif dm is not None or gm is not None:
                    union += (dm if dm is not None else gm).sum()
            assert got[i, j] == (inter / union if union else 0.0)


def test_bad_results_raise_clear_errors(fixtures_root: Path) -> None:
    root = fixtures_root / "ytvis"
    videos, categories = load_ground_truth(root / "gt.json")
    results = json.loads((root / "results.json").read_text())
    bad = [dict(results[0], category_id=99)]
    with pytest.raises(DataError, match="unknown category id 99"):
        load_results(bad, videos, categories)
    bad = [dict(results[0], segmentations=results[0]["segmentations"][:-1])]
    with pytest.raises(DataError, match=f"video {results[0]['video_id']}.*segmentations for a video of length"):
        load_results(bad, videos, categories)
    bad = [dict(results[0], video_id=12345)]
    with pytest.raises(DataError, match="12345"):
        load_results(bad, videos, categories)
