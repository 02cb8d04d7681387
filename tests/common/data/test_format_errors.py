"""Bad input gives a DataError whose message names the offending file and the problem (issue 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidseg_common.data.formats.cityscapes_sequence import CityscapesSequenceReader
from vidseg_common.data.formats.davis import DavisReader
from vidseg_common.data.formats.png import write_index_png
from vidseg_common.data.formats.youtube_vis import YouTubeVISReader
from vidseg_common.data.formats.youtube_vos import YouTubeVOSReader
from vidseg_common.errors import DataError


@pytest.fixture
def davis(synth, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "davis"
    shutil.copytree(synth("davis", min_objects=2, max_objects=2), root)
    return root, DavisReader(root).videos("train")[0]


def ann(root: Path, video: str, frame: str = "00003") -> Path:
    return root / "Annotations" / "480p" / video / f"{frame}.png"


def test_missing_annotation_names_file(davis) -> None:
    root, video = davis
    ann(root, video).unlink()
    with pytest.raises(DataError, match=r"00003\.png: annotation not found"):
        DavisReader(root).read_video(video)


def test_missing_video_folder_names_folder(davis) -> None:
    root, video = davis
    shutil.rmtree(root / "JPEGImages" / "480p" / video)
    with pytest.raises(DataError, match=rf"{video}: DAVIS video '{video}' folder not found"):
        DavisReader(root).read_video(video)


def test_missing_frame_of_annotation_names_file(synth, tmp_path: Path) -> None:
    root = tmp_path / "ytvos"
    shutil.copytree(synth("youtube_vos"), root)
    video = YouTubeVOSReader(root, "train").videos()[0]
    (root / "train" / "JPEGImages" / video / "00005.jpg").unlink()
    with pytest.raises(DataError, match=r"00005\.png: no frame 00005\.jpg"):
        YouTubeVOSReader(root, "train").read_video(video)


def test_empty_video(davis) -> None:
    root, video = davis
    for frame in (root / "JPEGImages" / "480p" / video).iterdir():
        frame.unlink()
    with pytest.raises(DataError, match=rf"{video}: empty DAVIS video"):
        DavisReader(root).read_video(video)


def test_size_mismatch(davis) -> None:
    root, video = davis
    write_index_png(ann(root, video), np.zeros((10, 12), dtype=np.uint8))
    with pytest.raises(DataError, match=r"00003\.png: annotation size 12×10 differs from frame .*00003\.jpg size 80×48"):
        DavisReader(root).read_video(video)


def test_rgb_mask_rejected(davis) -> None:
    root, video = davis
    Image.fromarray(np.zeros((48, 80, 3), dtype=np.uint8)).save(ann(root, video))
    with pytest.raises(DataError, match=r"00003\.png: mask is a RGB image"):
        DavisReader(root).read_video(video)


def test_binary_255_mask_rejected_or_converted(davis) -> None:
    root, video = davis
    names = DavisReader(root).frame_names(video)
    for name in names:
        mask = np.zeros((48, 80), dtype=np.uint8)
        mask[10:20, 10:30] = 255
        Image.fromarray(mask, mode="L").save(ann(root, video, name))
    with pytest.raises(DataError, match=r"00000\.png: mask holds only 0 and 255"):
        DavisReader(root).read_video(video)
    converted = DavisReader(root, binary_255="convert").read_video(video)
    assert converted.num_objects == 1 and set(np.unique(converted.masks)) == {0, 1}


def test_non_contiguous_ids(davis) -> None:
    root, video = davis
    reader = DavisReader(root)
    for name in reader.frame_names(video):
        mask = reader.read_mask(video, name)
        write_index_png(ann(root, video, name), np.where(mask == 2, 3, mask))
    with pytest.raises(DataError, match=r"object ids \[1, 3\] are not contiguous"):
        DavisReader(root).read_video(video)


def test_imagesets_path_escaping_root(davis) -> None:
    root, _ = davis
    (root / "ImageSets" / "2017" / "train.txt").write_text("../../../etc\n")
    with pytest.raises(DataError, match=r"escapes the dataset root"):
        DavisReader(root).videos("train")


@pytest.fixture
def ytvis(synth, tmp_path: Path) -> tuple[Path, dict]:
    root = synth("youtube_vis")
    return root, json.loads((root / "train.json").read_text())


def write_and_read(root: Path, data: dict, tmp_path: Path) -> YouTubeVISReader:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return YouTubeVISReader(path, root / "train" / "JPEGImages")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("videos"), r"bad\.json: missing top-level key 'videos'"),
        (lambda d: d["videos"][0].pop("file_names"), r"bad\.json: video 1 is missing keys \['file_names'\]"),
        (lambda d: d["videos"][0].update(length=7), r"bad\.json: video 1 has length 7 but 3 file_names"),
        (lambda d: d["annotations"][0].pop("category_id"), r"bad\.json: annotation 1 is missing keys \['category_id'\]"),
        (lambda d: d["annotations"][0]["segmentations"].pop(), r"bad\.json: annotation 1 has 2 segmentations but video 1 has length 3"),
        (lambda d: d["videos"][0]["file_names"].__setitem__(0, "../../../etc/passwd"), r"'\.\./\.\./\.\./etc/passwd' escapes the dataset root"),
        (lambda d: d["videos"][0]["file_names"].__setitem__(0, "/etc/passwd"), r"'/etc/passwd' is absolute"),
        (lambda d: d["videos"][0].update(length=0, file_names=[]), r"bad\.json: video 1 is empty"),
    ],
)
def test_youtube_vis_json_errors(ytvis, tmp_path: Path, edit, message: str) -> None:
    root, data = ytvis
    edit(data)
    with pytest.raises(DataError, match=message):
        write_and_read(root, data, tmp_path)


def test_youtube_vis_missing_frame(ytvis, tmp_path: Path) -> None:
    root, data = ytvis
    data["videos"][0]["file_names"][1] = data["videos"][0]["file_names"][1].replace(".jpg", "_gone.jpg")
    reader = write_and_read(root, data, tmp_path)
    with pytest.raises(DataError, match=r"_gone\.jpg: frame file not found"):
        reader.read_video(1)


def test_cityscapes_missing_sequence_frame(synth, tmp_path: Path) -> None:
    root = tmp_path / "cs"
    shutil.copytree(synth("cityscapes"), root)
    reader = CityscapesSequenceReader(root, "val")
    stem = reader.samples()[0]
    reader.frame_path(stem, -3).unlink()
    with pytest.raises(DataError, match=r"frankfurt_000000_000016_leftImg8bit\.png: frame file not found"):
        reader.read_frame(stem, -3)
    with pytest.raises(DataError, match=r"offset -20 lies outside its snippet"):
        reader.read_frame(stem, -20)


def test_first_frame_only_for_test_dev(davis) -> None:
    root, video = davis
    names = DavisReader(root).frame_names(video)
    for name in names[1:]:
        ann(root, video, name).unlink()
    with pytest.raises(DataError, match=r"00001\.png: annotation not found"):
        DavisReader(root).read_video(video)
    record = DavisReader(root).read_video(video, first_frame_only=True)
    assert record.annotated.tolist() == [True] + [False] * (len(names) - 1)
    assert (record.masks[1:] == 255).all() and record.num_objects == 2
