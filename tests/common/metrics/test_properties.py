"""Hypothesis property tests: J/F symmetry, sparse matching == cv2.dilate reference, exact cropping,
AP invariant to result order, perfect predictions score 1."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vidseg_common.metrics.jandf import mask_pair_scores
from vidseg_common.metrics.vis import VideoAP
from vidseg_common.metrics.vos import boundary_f_measure, region_similarity
from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mask_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    h, w = draw(st.integers(2, 20)), draw(st.integers(2, 20))
    shape = (draw(st.integers(1, 3)), h, w)
    return draw(arrays(np.bool_, shape)), draw(arrays(np.bool_, shape))


def _f_official(fg: np.ndarray, gt: np.ndarray, bound_th: float) -> float:
    """davis2017 f_measure with its own numpy seg2bmap and cv2.dilate (the reference definition)."""

    def seg2bmap(seg: np.ndarray) -> np.ndarray:
        e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
        e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
        b = seg ^ e | seg ^ s | seg ^ se
        b[-1, :] = seg[-1, :] ^ e[-1, :]
        b[:, -1] = seg[:, -1] ^ s[:, -1]
        b[-1, -1] = 0
        return b

    r = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(fg.shape))
    yy, xx = np.mgrid[-int(r) : int(r) + 1, -int(r) : int(r) + 1]
    disk = (yy**2 + xx**2 <= r**2).astype(np.uint8)
    fb, gb = seg2bmap(fg), seg2bmap(gt)
    fg_dil, gt_dil = cv2.dilate(fb.astype(np.uint8), disk), cv2.dilate(gb.astype(np.uint8), disk)
    n_fg, n_gt = np.sum(fb), np.sum(gb)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision, recall = np.sum(fb * gt_dil) / float(n_fg), np.sum(gb * fg_dil) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@SETTINGS
@given(mask_pairs())
def test_j_and_f_symmetric(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = (torch.from_numpy(m) for m in pair)
    assert torch.equal(region_similarity(a, b), region_similarity(b, a))
    assert torch.equal(boundary_f_measure(a, b), boundary_f_measure(b, a))
    assert torch.all(boundary_f_measure(a, a) == 1) and torch.all(region_similarity(a, a) == 1)


@SETTINGS
@given(mask_pairs(), st.sampled_from([0.008, 0.05, 0.2, 1, 3]))
def test_f_equals_cv2_dilate_reference(pair: tuple[np.ndarray, np.ndarray], bound_th: float) -> None:
    gt, pred = pair
    got = boundary_f_measure(torch.from_numpy(gt), torch.from_numpy(pred), bound_th=bound_th)
    for t in range(gt.shape[0]):
        assert float(got[t]) == _f_official(pred[t], gt[t], bound_th)


@SETTINGS
@given(mask_pairs(), st.integers(0, 30), st.integers(0, 30))
def test_cropping_is_exact(pair: tuple[np.ndarray, np.ndarray], pad_y: int, pad_x: int) -> None:
    gt, pred = pair
    t, h, w = gt.shape
    big_g = np.zeros((t, h + 30, w + 30), bool)
    big_p = np.zeros_like(big_g)
    big_g[:, pad_y : pad_y + h, pad_x : pad_x + w] = gt  # objects anywhere, also touching the frame edges
    big_p[:, pad_y : pad_y + h, pad_x : pad_x + w] = pred
    g, p = torch.from_numpy(big_g), torch.from_numpy(big_p)
    j, f = mask_pair_scores(g, p)
    assert torch.equal(j, region_similarity(g, p))
    assert torch.equal(f, boundary_f_measure(g, p))


def _fixture_ap(fixtures: Path, results: list) -> dict[str, float]:
    videos, categories = load_ground_truth(fixtures / "ytvis" / "gt.json")
    dets = load_results(results, videos, categories)
    metric = VideoAP()
    for vid in videos:
        metric.update(dets[vid], videos[vid])
    return {k: float(v) for k, v in metric.compute().items()}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rnd=st.randoms(use_true_random=False))
def test_ap_invariant_to_result_order(fixtures_root: Path, rnd: object) -> None:
    fixtures = fixtures_root
    results = json.loads((fixtures / "ytvis" / "results.json").read_text())
    baseline = _fixture_ap(fixtures, results)
    rnd.shuffle(results)  # type: ignore[attr-defined]
    assert _fixture_ap(fixtures, results) == baseline


def test_perfect_detections_score_one(fixtures_root: Path) -> None:
    gt = json.loads((fixtures_root / "ytvis" / "gt.json").read_text())
    perfect = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.5 + 0.01 * i,
                "segmentations": a["segmentations"]} for i, a in enumerate(gt["annotations"])]  # fmt: skip
    stats = _fixture_ap(fixtures_root, perfect)
    for name in ("AP", "AP50", "AP75", "AR10", "AR100"):
        assert stats[name] == 1.0, name
    assert all(v == 1.0 or v == -1.0 or (name == "AR1" and v <= 1.0) for name, v in stats.items())
    assert not any(math.isnan(v) for v in stats.values())


@SETTINGS
@given(
    arrays(np.uint8, st.tuples(st.integers(3, 5), st.integers(3, 24), st.integers(3, 24)), elements=st.sampled_from([0, 0, 1, 2, 3, 255])),
    arrays(np.uint8, st.tuples(st.just(1)), elements=st.integers(0, 4)),
    st.sampled_from(["semi-supervised", "unsupervised"]),
)
def test_numpy_and_torch_backends_agree(gt: np.ndarray, seed: np.ndarray, protocol: str) -> None:
    from vidseg_common.errors import DataError
    from vidseg_common.metrics.jandf import score_video

    rng = np.random.default_rng(int(seed[0]))
    pred = np.where(rng.random(gt.shape) < 0.8, np.where(gt == 255, 0, gt), rng.integers(0, 4, gt.shape)).astype(np.uint8)
    g, p = torch.from_numpy(gt), torch.from_numpy(pred)
    try:
        fast = score_video(g, p, protocol=protocol, backend="numpy", bound_th=0.1)
    except DataError:
        return  # more predicted objects than annotated: both backends raise before scoring
    slow = score_video(g, p, protocol=protocol, backend="torch", bound_th=0.1)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)
