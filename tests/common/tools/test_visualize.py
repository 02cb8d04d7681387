"""``vidseg visualize`` and the renderers of :mod:`vidseg_common.viz` on tiny synthetic DAVIS / YouTube-VIS / Cityscapes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidseg_common.data.formats.cityscapes import TRAIN_ID_COLORS
from vidseg_common.data.formats.common import read_rgb
from vidseg_common.data.formats.png import davis_palette, read_index_png
from vidseg_common.data.formats.youtube_vis import decode_segmentation
from vidseg_common.viz import contact_sheet, overlay_classes, sample_indices
from vidseg_common.viz.overlay import boundary

H, W, GAP = 48, 80, 2


def blend(frame: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The documented overlay colour at alpha 0.5: round(0.5·frame + 0.5·colour)."""
    return np.round(0.5 * frame.astype(np.float64) + 0.5 * colour.astype(np.float64)).astype(np.uint8)


def interior(mask: np.ndarray) -> np.ndarray:
    return mask & ~boundary(mask.astype(np.int64))


def tile(sheet: np.ndarray, index: int, columns: int) -> np.ndarray:
    top, left = (index // columns) * (H + GAP), (index % columns) * (W + GAP)
    return sheet[top : top + H, left : left + W]


def gif_frames(path: Path) -> tuple[int, tuple[int, int]]:
    with Image.open(path) as image:
        return image.n_frames, image.size


def test_vos_gif_sheet_and_object_colours(tiny_data, vidseg, tmp_path: Path) -> None:
    root = tiny_data["davis"]
    video = "val-000"
    masks = sorted((root / "Annotations" / "480p" / video).glob("*.png"))
    code, out, err = vidseg("visualize", "vos", "--pred", root / "Annotations" / "480p", "--images", root,
                            "--videos", video, "--out", tmp_path, "--no-ids", "--sheet-frames", "4", "--columns", "3")
    assert code == 0, err
    assert f"{video}: {len(masks)} frames" in out
    assert gif_frames(tmp_path / f"{video}.gif") == (len(masks), (W, H))
    sheet = np.asarray(Image.open(tmp_path / f"{video}_sheet.png").convert("RGB"))
    assert sheet.shape == (2 * H + GAP, 3 * W + 2 * GAP, 3)  # 4 frames on 3 columns → 2 rows
    palette = davis_palette()
    for position, index in enumerate(sample_indices(len(masks), 4)):
        ids = read_index_png(masks[index])
        frame = read_rgb(root / "JPEGImages" / "480p" / video / f"{masks[index].stem}.jpg")
        rendered = tile(sheet, position, 3)
        for object_id in (1, 2):
            inside = interior(ids == object_id)
            assert inside.any()
            np.testing.assert_array_equal(rendered[inside], blend(frame[inside], palette[object_id]))
        edge = boundary(ids) & (ids == 1)
        np.testing.assert_array_equal(rendered[edge], np.broadcast_to(palette[1], rendered[edge].shape))
        np.testing.assert_array_equal(rendered[ids == 0], frame[ids == 0])  # background untouched


def test_vis_results_with_threshold(tiny_data, vidseg, tmp_path: Path) -> None:
    root = tiny_data["youtube_vis"]
    VH, VW = 120, 200  # conftest.VIS_SIZE
    dataset = json.loads((root / "valid.json").read_text())
    video = dataset["videos"][0]
    anns = [a for a in dataset["annotations"] if a["video_id"] == video["id"]]
    assert len(anns) == 2
    results = [{"video_id": video["id"], "category_id": a["category_id"], "score": score,
                "segmentations": a["segmentations"]} for a, score in zip(anns, (0.9, 0.1))]
    (tmp_path / "results.json").write_text(json.dumps(results))
    code, _, err = vidseg("visualize", "vis", "--results", tmp_path / "results.json", "--gt", root / "valid.json",
                            "--images", root / "valid" / "JPEGImages", "--videos", video["id"], "--mp4",
                            "--score-threshold", "0.5", "--out", tmp_path / "viz", "--sheet-frames", "1")
    assert code == 0, err
    name = video["file_names"][0].split("/")[0]
    assert gif_frames(tmp_path / "viz" / f"{name}.gif") == (video["length"], (VW, VH))
    import cv2

    capture = cv2.VideoCapture(str(tmp_path / "viz" / f"{name}.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == video["length"]
    capture.release()
    sheet = np.asarray(Image.open(tmp_path / "viz" / f"{name}_sheet.png").convert("RGB"))
    assert sheet.shape == (VH, VW, 3)
    frame = read_rgb(root / "valid" / "JPEGImages" / video["file_names"][0])
    kept = decode_segmentation(anns[0]["segmentations"][0], VH, VW, "kept")
    dropped = decode_segmentation(anns[1]["segmentations"][0], VH, VW, "dropped")
    # captions are centred on the mask's centroid: rows more than 8 px away from it show the pure overlay
    ys, _ = np.nonzero(kept)
    rows = np.abs(np.arange(VH) - ys.mean()) > 8
    inside = interior(kept) & rows[:, None]
    assert inside.sum() >= 10
    np.testing.assert_array_equal(sheet[inside], blend(frame[inside], davis_palette()[1]))
    far = dropped & ~kept & rows[:, None]
    assert far.any()
    np.testing.assert_array_equal(sheet[far], frame[far])  # the 0.1-score prediction is not drawn


def test_vss_class_colours(tiny_data, vidseg, tmp_path: Path) -> None:
    root = tiny_data["cityscapes"]
    labels = sorted((root / "gtFine" / "val").rglob("*_gtFine_labelTrainIds.png"))
    assert len(labels) == 2
    code, _, err = vidseg("visualize", "vss", "--pred", root / "gtFine" / "val", "--images", root / "leftImg8bit",
                          "--pattern", "*_labelTrainIds.png", "--out", tmp_path, "--columns", "2")
    assert code == 0, err
    group = labels[0].parent.name
    assert gif_frames(tmp_path / f"{group}.gif")[1] == (W, H)
    sheet = np.asarray(Image.open(tmp_path / f"{group}_sheet.png").convert("RGB"))
    assert sheet.shape == (H, 2 * W + GAP, 3)
    train_ids = read_index_png(labels[0]).astype(np.int64)
    stem = labels[0].name.removesuffix("_gtFine_labelTrainIds.png")
    frame = read_rgb(next((root / "leftImg8bit").rglob(f"{stem}_leftImg8bit.png")))
    valid = train_ids != 255
    assert valid.any() and len(np.unique(train_ids[valid])) >= 2
    expected = frame.copy()
    expected[valid] = blend(frame[valid], TRAIN_ID_COLORS[train_ids[valid]])
    np.testing.assert_array_equal(sheet[:, :W], expected)


def test_contact_sheet_layout_and_overlay_checks() -> None:
    frames = [np.full((4, 6, 3), i * 40, np.uint8) for i in range(5)]
    sheet = contact_sheet(frames, columns=2, gap=1, background=7)
    assert sheet.shape == (3 * 4 + 2, 2 * 6 + 1, 3)
    assert (sheet[10:14, 7:13] == 7).all() and (sheet[10:14, :6] == 160).all()
    assert sample_indices(10, 4) == [0, 3, 6, 9] and sample_indices(3, 8) == [0, 1, 2]
    from vidseg_common.errors import DataError

    with pytest.raises(DataError, match="class ids must lie in"):
        overlay_classes(frames[0], np.full((4, 6), 19), "cityscapes")
    with pytest.raises(DataError, match="differs from the frame size"):
        overlay_classes(frames[0], np.zeros((4, 5), np.int64), "camvid")


def test_bad_inputs_name_the_file(tiny_data, vidseg, tmp_path: Path) -> None:
    root = tiny_data["davis"]
    code, _, err = vidseg("visualize", "vos", "--pred", tmp_path / "missing", "--images", root, "--out", tmp_path)
    assert code == 2 and f"{tmp_path / 'missing'}: VOS prediction folder not found" in err
    rgb = tmp_path / "pred" / "val-000" / "00000.png"
    rgb.parent.mkdir(parents=True)
    Image.new("RGB", (W, H)).save(rgb)
    code, _, err = vidseg("visualize", "vos", "--pred", tmp_path / "pred", "--images", root, "--out", tmp_path / "o")
    assert code == 2 and str(rgb) in err and "RGB" in err
    small = tmp_path / "pred2" / "val-000" / "00000.png"
    small.parent.mkdir(parents=True)
    Image.new("P", (W // 2, H)).save(small)
    code, _, err = vidseg("visualize", "vos", "--pred", tmp_path / "pred2", "--images", root, "--out", tmp_path / "o")
    assert code == 2 and str(small) in err and "differs from its frame's size" in err
    bad_json = tmp_path / "results.json"
    bad_json.write_text("{not json")
    vis = tiny_data["youtube_vis"]
    code, _, err = vidseg("visualize", "vis", "--results", bad_json, "--gt", vis / "valid.json",
                          "--images", vis / "valid" / "JPEGImages", "--out", tmp_path / "o")
    assert code == 2 and f"{bad_json}: invalid JSON" in err
    bad_json.write_text(json.dumps([{"video_id": 1, "score": 0.5}]))
    code, _, err = vidseg("visualize", "vis", "--results", bad_json, "--gt", vis / "valid.json",
                          "--images", vis / "valid" / "JPEGImages", "--out", tmp_path / "o")
    assert code == 2 and "result 0 lacks ['category_id', 'segmentations']" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
