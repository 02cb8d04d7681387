"""Prediction writers (VOS PNGs, YouTube-VIS results JSON, Cityscapes PNGs) and the ``vidseg synth`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from vidseg_common.data.formats.cityscapes import LABEL_TO_TRAIN_ID
from vidseg_common.data.formats.cityscapes_sequence import write_cityscapes_prediction
from vidseg_common.data.formats.davis import DavisReader
from vidseg_common.data.formats.youtube_vis import (
    decode_segmentation,
    mask_to_uncompressed_rle,
    write_youtube_vis_results,
)
from vidseg_common.tools.main import main

# pycocotools' decoder predates numpy 2's __array__(copy=) protocol (a library warning, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_youtube_vis_results_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = [rng.random((20, 30)) > 0.5, None, rng.random((20, 30)) > 0.9]
    write_youtube_vis_results(tmp_path / "results.json", [{"video_id": 3, "category_id": 7, "score": 0.5, "masks": masks}])
    (result,) = json.loads((tmp_path / "results.json").read_text())
    assert result["video_id"] == 3 and result["category_id"] == 7 and result["score"] == 0.5
    assert result["segmentations"][1] is None
    for seg, mask in zip(result["segmentations"], masks):
        if mask is not None:
            assert isinstance(seg["counts"], str) and seg["size"] == [20, 30]
            decoded = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
            assert np.array_equal(decoded.astype(bool), mask)


def test_uncompressed_rle_matches_pycocotools() -> None:
    rng = np.random.default_rng(1)
    for mask in (rng.random((7, 9)) > 0.5, np.ones((4, 5), bool), np.zeros((4, 5), bool)):
        rle = mask_to_uncompressed_rle(mask)
        assert sum(rle["counts"]) == mask.size
        via_coco = mask_utils.frPyObjects(rle, *mask.shape)
        assert np.array_equal(mask_utils.decode(via_coco).astype(bool), mask)
        assert np.array_equal(decode_segmentation(rle, *mask.shape, "x"), mask)
    polygon = [[1.0, 1.0, 6.0, 1.0, 6.0, 5.0, 1.0, 5.0]]
    assert decode_segmentation(polygon, 8, 8, "x").sum() > 0


def test_cityscapes_prediction_in_label_ids(tmp_path: Path) -> None:
    train_ids = np.array([[0, 13, 255], [10, 18, 2]], dtype=np.uint8)
    write_cityscapes_prediction(tmp_path, "frankfurt_000000_001016", train_ids)
    label_ids = np.array(Image.open(tmp_path / "frankfurt" / "frankfurt_000000_001016_pred.png"))
    assert label_ids.tolist() == [[7, 26, 0], [23, 33, 11]]
    assert LABEL_TO_TRAIN_ID[label_ids].tolist() == [[0, 13, 255], [10, 18, 2]]


def test_vidseg_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["synth", str(tmp_path / "d"), "--layout", "davis", "--num-videos", "1", "--num-val-videos", "1",
                 "--num-frames", "4", "--height", "40", "--width", "64", "--full-occlusion", "--no-write-flow",
                 "--workers", "1", "--davis-resolution", "Full-Resolution"])
    assert code == 0 and "wrote davis dataset" in capsys.readouterr().out
    reader = DavisReader(tmp_path / "d", resolution="Full-Resolution")
    assert reader.videos("val") == ["val-000"] and reader.read_video("val-000").frames.shape == (4, 40, 64, 3)
    assert not (tmp_path / "d" / "flow").exists()
    code = main(["synth", str(tmp_path / "e"), "--layout", "davis", "--late-entry"])
    assert code == 2 and "late_entry is not possible" in capsys.readouterr().err
