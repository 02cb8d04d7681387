"""Round trips generate → read → write → byte-compare, one per layout (issue 3, must-show 1).

PNG annotations, label maps, lossless PNG frames, JSON and split files must come back byte for byte.
JPEG frames cannot (decoding and re-encoding a JPEG is lossy), so they are compared after decoding:
the re-encoded frame must match the generated one with PSNR > 35 dB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidseg_common.data.formats import camvid
from vidseg_common.data.formats.cityscapes_sequence import (
    CityscapesSequenceReader,
    split_stem,
    write_cityscapes_snippet,
)
from vidseg_common.data.formats.coco import CocoPseudoVideoReader, write_coco_json
from vidseg_common.data.formats.common import read_rgb, write_rgb
from vidseg_common.data.formats.davis import DavisReader, write_davis_split, write_davis_video
from vidseg_common.data.formats.youtube_vis import YouTubeVISReader, build_youtube_vis_json, write_json
from vidseg_common.data.formats.youtube_vos import (
    YouTubeVOSReader,
    write_youtube_vos_meta,
    write_youtube_vos_video,
)


@pytest.fixture
def assert_same_files(files_under):
    return lambda original, copy, lossy_suffix=None: _assert_same_files(files_under, original, copy, lossy_suffix)


def _assert_same_files(files_under, original: Path, copy: Path, lossy_suffix: str | None = None) -> None:
    src, dst = files_under(original), files_under(copy)
    src = {k: v for k, v in src.items() if not k.startswith("flow/")}
    assert sorted(src) == sorted(dst)
    for name, data in src.items():
        if lossy_suffix and name.endswith(lossy_suffix):
            a, b = read_rgb(original / name), read_rgb(copy / name)
            assert a.shape == b.shape
            mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
            assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 35.0, name  # PSNR of one JPEG re-encode
        else:
            assert data == dst[name], name


def test_davis_roundtrip(synth, tmp_path: Path, assert_same_files) -> None:
    root = synth("davis", full_occlusion=True, camera_speed=2)
    reader = DavisReader(root)
    for split in ("train", "val"):
        videos = reader.videos(split)
        write_davis_split(tmp_path, split, videos)
        for name in videos:
            video = reader.read_video(name)
            assert video.frames.shape == (11, 48, 80, 3) and video.masks.shape == (11, 48, 80)
            assert video.annotated.all() and video.num_objects >= 1
            write_davis_video(tmp_path, name, video.frame_names, video.frames, video.masks)
    assert_same_files(root, tmp_path, lossy_suffix=".jpg")


def test_youtube_vos_roundtrip(synth, tmp_path: Path, assert_same_files) -> None:
    root = synth("youtube_vos", late_entry=True, max_objects=3, min_objects=3)
    late = 0
    for split in ("train", "valid"):
        reader = YouTubeVOSReader(root, split)
        dense = YouTubeVOSReader(root, split, all_frames=True)
        meta = {}
        for name in reader.videos():
            video = reader.read_video(name)
            assert video.frame_names == ["00000", "00005", "00010"]
            ann = [n for n, a in zip(video.frame_names, video.annotated) if a]
            write_youtube_vos_video(tmp_path, split, name, video.frame_names, video.frames, ann, video.masks[video.annotated])
            full = dense.read_video(name)
            assert len(full.frame_names) == 11
            write_youtube_vos_video(tmp_path, split, name, full.frame_names, full.frames, [], full.masks[:0], all_frames=True)
            meta[name] = reader.objects(name)
            late += sum(f > 0 for f in video.first_frame.values())
            if split == "valid":  # only first appearances are annotated, each holding only its new objects
                for obj, t in video.first_frame.items():
                    assert video.annotated[t] and (video.masks[t] == obj).any()
                    assert set(np.unique(video.masks[t])) - {0} <= {o for o, f in video.first_frame.items() if f == t}
        write_youtube_vos_meta(tmp_path, split, meta)
    assert late > 0, "late_entry=True should produce at least one object entering after frame 0"
    assert_same_files(root, tmp_path, lossy_suffix=".jpg")


def test_youtube_vis_roundtrip(synth, tmp_path: Path, assert_same_files) -> None:
    root = synth("youtube_vis", late_entry=True)
    for split in ("train", "valid"):
        reader = YouTubeVISReader(root / f"{split}.json", root / split / "JPEGImages")
        videos, anns = [], []
        for vid in reader.video_ids():
            video = reader.read_video(vid)
            info = reader.videos[vid]
            videos.append({k: info[k] for k in ("id", "width", "height", "length", "file_names")})
            for frame, file_name in zip(video.frames, video.file_names):
                write_rgb(tmp_path / split / "JPEGImages" / file_name, frame)
            for inst in video.instances:
                assert inst.masks.dtype == bool and inst.masks.shape == (3, 48, 80)
                assert (inst.masks.any(axis=(1, 2)) == inst.valid).all()
                anns.append({"video_id": vid, "category_id": inst.category_id, "masks": inst.masks, "valid": inst.valid})
        write_json(tmp_path / f"{split}.json", build_youtube_vis_json(videos, reader.categories, anns))
    assert_same_files(root, tmp_path, lossy_suffix=".jpg")


def test_cityscapes_roundtrip(synth, tmp_path: Path, assert_same_files) -> None:
    root = synth("cityscapes", camera_speed=2)
    for split in ("train", "val"):
        reader = CityscapesSequenceReader(root, split)
        for stem in reader.samples():
            lo, hi = reader.offset_range(stem)
            frames = np.stack([reader.read_frame(stem, o) for o in range(lo, hi + 1)])
            label_ids = reader.read_label_ids(stem, frames.shape[1:3])
            train_ids = reader.read_label(stem)
            assert set(np.unique(train_ids)) <= set(range(19)) | {255}
            city, seq, k = split_stem(stem)
            write_cityscapes_snippet(tmp_path, split, city, seq, k, frames, label_ids)
    assert_same_files(root, tmp_path)


def test_camvid_roundtrip(synth, tmp_path: Path, assert_same_files) -> None:
    root = synth("camvid", num_frames=12, frame_step=4)
    for split in ("train", "val", "test"):
        reader = camvid.CamVidReader(root, split)
        for stem in reader.samples():
            sequence, idx = camvid.video_index(stem)
            lo, _ = reader.offset_range(stem)
            frames = np.stack([reader.read_frame(stem, o) for o in range(lo, 0 + 1)])
            label = reader.read_label(stem, frames.shape[1:3])
            assert set(np.unique(label)) <= set(range(11)) | {255}
            camvid.write_camvid_label(tmp_path, split, stem, read_rgb(root / split / f"{stem}.png"), label)
            n_total = len(list((root / "video_image" / sequence).glob("*.png")))
            all_frames = np.stack([reader.read_frame(stem, o) for o in range(lo, lo + n_total)])
            camvid.write_camvid_sequence(tmp_path, sequence, idx + lo, all_frames)
    assert_same_files(root, tmp_path)


def test_coco_pseudo_video_roundtrip(synth, tmp_path: Path, assert_same_files) -> None:
    root = synth("youtube_vis")
    vis = YouTubeVISReader(root / "train.json", root / "train" / "JPEGImages")
    images, instances = [], []
    for vid in vis.video_ids():
        video = vis.read_video(vid)
        write_rgb(tmp_path / "a" / "images" / f"{vid}.png", video.frames[0])
        images.append({"id": vid, "file_name": f"{vid}.png", "height": 48, "width": 80})
        instances += [{"image_id": vid, "category_id": i.category_id, "mask": i.masks[0]} for i in video.instances if i.valid[0]]
    write_coco_json(tmp_path / "a" / "instances.json", images, instances, vis.categories)
    reader = CocoPseudoVideoReader(tmp_path / "a" / "instances.json", tmp_path / "a" / "images")
    assert reader.image_ids()
    images2, instances2 = [], []
    for image_id in reader.image_ids():
        video = reader.read_video(image_id)
        assert video.frames.shape == (1, 48, 80, 3)
        write_rgb(tmp_path / "b" / "images" / f"{image_id}.png", video.frames[0])
        images2.append(reader.images[image_id])
        instances2 += [{"image_id": image_id, "category_id": i.category_id, "mask": i.masks[0]} for i in video.instances]
    write_coco_json(tmp_path / "b" / "instances.json", images2, instances2, vis.categories)
    assert_same_files(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("layout", ["davis", "cityscapes"])
def test_same_seed_same_bytes_any_worker_count(tmp_path: Path, layout: str, files_under) -> None:
    from vidseg_common.data.synthetic.config import SyntheticConfig
    from vidseg_common.data.synthetic.generator import generate_dataset

    cfg = SyntheticConfig(layout=layout, num_videos=2, num_val_videos=1, num_frames=6, height=40, width=64,
                          corruption_prob=0.3, camera_speed=1, seed=3)
    one = generate_dataset(tmp_path / "one", cfg, workers=1)
    two = generate_dataset(tmp_path / "two", cfg, workers=2)
    other = generate_dataset(tmp_path / "other", SyntheticConfig(**{**cfg.to_dict(), "seed": 4}), workers=1)
    assert files_under(one) == files_under(two)
    assert files_under(one) != files_under(other)
