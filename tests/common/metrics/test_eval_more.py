"""`vidseg eval youtube-vos|cityscapes|camvid` on tiny hand-made layouts with numbers known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidseg_common.data.formats.png import write_index_png
from vidseg_common.tools.main import main


def _square(h: int, w: int, y: int, x: int, size: int, value: int = 1) -> np.ndarray:
    ids = np.zeros((h, w), np.uint8)
    ids[y : y + size, x : x + size] = value
    return ids


def test_eval_youtube_vos_proxy(tmp_path: Path) -> None:
    gt, res = tmp_path / "gt", tmp_path / "res"
    # video a: object 1 (seen) present from frame 0; object 2 (unseen category) appears at frame 10.
    for k, stem in enumerate(["00000", "00005", "00010", "00015"]):
        frame = _square(40, 60, 5, 5 + k, 10)
        if k >= 2:
            frame[20:30, 30:40] = 2
        write_index_png(gt / "Annotations" / "a" / f"{stem}.png", frame)
        pred = _square(40, 60, 5, 5 + k, 10)
        if k == 3:
            pred[20:30, 32:42] = 2  # shifted 2 px: J = 80/120
        write_index_png(res / "a" / f"{stem}.png", pred)
    meta = {"videos": {"a": {"objects": {"1": {"category": "dog"}, "2": {"category": "yak"}}}}}
    (gt / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "unseen.txt").write_text("yak\n")
    out = tmp_path / "s.json"
    argv = ["eval", "youtube-vos", "--gt", str(gt), "--results", str(res), "--unseen", str(tmp_path / "unseen.txt")]
    assert main([*argv, "--json", str(out), "--quiet", "--workers", "1"]) == 0
    scores = json.loads(out.read_text())["scores"]
    assert scores["J_seen"] == 1.0 and scores["F_seen"] == 1.0
    # object 2 is scored on frame 00015 only (its first frame 00010 is the given one)
    assert scores["J_unseen"] == pytest.approx(80 / 120, abs=1e-12)
    assert scores["G_proxy"] == pytest.approx((2 + 80 / 120 + scores["F_unseen"]) / 4, abs=1e-12)


def test_eval_cityscapes_and_camvid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    from vidseg_common.data.formats.cityscapes import LABEL_TO_TRAIN_ID

    label_ids = np.array([7, 8, 11, 26, 0, 24], np.uint8)  # road, sidewalk, building, car, unlabeled, person
    hist = np.zeros((19, 19))
    for stem in ("frankfurt_000000_000294", "lindau_000001_000019"):
        city = stem.split("_")[0]
        gt = label_ids[rng.integers(0, 6, (16, 24))]
        train = LABEL_TO_TRAIN_ID[gt]
        pred = np.where(rng.random((16, 24)) < 0.8, np.minimum(train, 18), rng.integers(0, 19, (16, 24))).astype(np.uint8)
        write_index_png(tmp_path / "cs" / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", gt)
        write_index_png(tmp_path / "pred" / city / f"{stem}_leftImg8bit.png", pred)
        keep = train != 255
        hist += np.bincount(19 * train[keep].astype(int) + pred[keep], minlength=361).reshape(19, 19)
    with np.errstate(invalid="ignore"):
        iou = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    out = tmp_path / "cs.json"
    argv = ["eval", "cityscapes", "--gt", str(tmp_path / "cs"), "--results", str(tmp_path / "pred")]
    assert main([*argv, "--json", str(out), "--quiet", "--workers", "1"]) == 0
    assert json.loads(out.read_text())["mIoU"] == pytest.approx(np.nanmean(iou), abs=1e-12)

    labels = rng.integers(0, 12, (3, 12, 16)).astype(np.uint8)  # SegNet ids, 11 = void
    preds = np.where(rng.random(labels.shape) < 0.7, np.minimum(labels, 10), rng.integers(0, 11, labels.shape)).astype(np.uint8)
    for i, stem in enumerate(("Seq05VD_f00030", "Seq05VD_f00060", "0001TP_008550")):
        write_index_png(tmp_path / "cv" / "testannot" / f"{stem}.png", labels[i])
        write_index_png(tmp_path / "cvpred" / f"{stem}.png", preds[i])
    keep = labels != 11
    hist = np.bincount(11 * labels[keep].astype(int) + preds[keep], minlength=121).reshape(11, 11)
    iou = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    argv = ["eval", "camvid", "--gt", str(tmp_path / "cv"), "--results", str(tmp_path / "cvpred")]
    assert main([*argv, "--json", str(out), "--quiet", "--workers", "2"]) == 0
    assert json.loads(out.read_text())["mIoU"] == pytest.approx(np.nanmean(iou), abs=1e-12)
