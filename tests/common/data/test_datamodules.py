"""DataModules: the batch contract of docs/architecture.md, worker reseeding, reproducibility, synthetic cache, YAML config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidseg_common.data.datamodules import VISDataModule, VOSDataModule, VSSDataModule
from vidseg_common.data.datasets import VOSClipDataset, collate_clips
from vidseg_common.data.formats.davis import DavisReader
from vidseg_common.data.sampling import MaxSkip
from vidseg_common.data.transforms import ClipAugment, worker_init_fn
from vidseg_common.errors import ConfigError

TINY = {"height": 48, "width": 80, "num_frames": 12, "num_videos": 2, "num_val_videos": 1}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


def test_vos_batch_contract(cache: str) -> None:
    dm = VOSDataModule(synthetic=TINY, cache_dir=cache, crop_size=(32, 32), batch_size=2, num_workers=0, max_objects=2)
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 3, 3, 32, 32) and batch["frames"].dtype == torch.float32
    assert batch["masks"].shape == (2, 3, 32, 32) and batch["masks"].dtype == torch.long
    assert batch["num_objects"].shape == (2,)
    for masks, k in zip(batch["masks"], batch["num_objects"]):
        assert 1 <= k <= 2
        assert set(masks.unique().tolist()) <= {*range(k + 1), 255}
        assert set(masks[0].unique().tolist()) >= set(range(1, k + 1))  # kept objects are in the first frame
    val = next(iter(dm.val_dataloader()))
    assert val["frames"].shape == (1, 12, 3, 48, 80) and val["masks"].shape == (1, 12, 48, 80)
    assert val["meta"][0]["frames"][0] == "00000" and val["meta"][0]["size"] == (48, 80)
    assert val["num_objects"][0] == val["masks"][0, 0][val["masks"][0, 0] != 255].max()


def test_youtube_vos_cfbi_clips(cache: str) -> None:
    dm = VOSDataModule(dataset="youtube_vos", protocol="cfbi", synthetic={**TINY, "num_frames": 30, "late_entry": True},
                       cache_dir=cache, crop_size=(32, 32), batch_size=2, num_workers=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 5, 3, 32, 32)  # reference + previous + 3 current
    val = next(iter(dm.val_dataloader()))
    assert val["frames"].shape[1] == 6  # sparse frames 00000, 00005, ..., 00025
    assert all(val["meta"][0]["annotated"][t] for t in val["meta"][0]["first_frame"].values())


def test_vis_batch_contract(cache: str) -> None:
    dm = VISDataModule(synthetic={**TINY, "num_frames": 30}, cache_dir=cache, batch_size=2, num_workers=0,
                       crop_size=(32, 32), max_size=None, eval_short_side=None)
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 5, 3, 32, 32)
    assert isinstance(batch["targets"], list) and len(batch["targets"]) == 2
    for target in batch["targets"]:
        n = len(target["labels"])
        assert n >= 1 and target["labels"].dtype == torch.long
        assert target["masks"].shape == (n, 5, 32, 32) and target["masks"].dtype == torch.bool
        assert target["boxes"].shape == (n, 5, 4) and target["valid"].shape == (n, 5)
        assert torch.equal(target["valid"], target["masks"].flatten(2).any(2))
        assert (target["boxes"] >= 0).all() and (target["boxes"] <= 1).all()
        assert target["valid"].any(1).all()  # instances cropped away in every frame are dropped
    val = next(iter(dm.val_dataloader()))
    assert val["frames"].shape[:2] == (1, 6) and val["targets"][0]["masks"].shape[1] == 6


@pytest.mark.parametrize("dataset", ["cityscapes", "camvid"])
def test_vss_batch_contract(cache: str, dataset: str) -> None:
    dm = VSSDataModule(dataset=dataset, synthetic={"height": 48, "width": 80}, cache_dir=cache, crop_size=(32, 32),
                       batch_size=2, num_workers=0, num_previous=3)
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 4, 3, 32, 32) and batch["label"].shape == (2, 32, 32)
    assert batch["label"].dtype == torch.long
    assert set(batch["label"].unique().tolist()) <= set(range(dm.num_classes)) | {255}
    val = next(iter(dm.val_dataloader()))
    offsets = val["meta"][0]["frames"]
    assert len(offsets) == 4 and val["label"].shape == (1, 64, 96)  # padded to a multiple of 32


def test_vss_eval_is_deterministic(cache: str) -> None:
    dm = VSSDataModule(synthetic={"height": 48, "width": 80}, cache_dir=cache, num_workers=0)
    a = next(iter(dm.val_dataloader()))
    b = next(iter(VSSDataModule(synthetic={"height": 48, "width": 80}, cache_dir=cache, num_workers=0, seed=5).val_dataloader()))
    assert a["meta"][0]["frames"] == b["meta"][0]["frames"] and torch.equal(a["frames"], b["frames"])


def _one_video_dataset(root: Path) -> VOSClipDataset:
    reader = DavisReader(root)
    video = reader.videos("train")[:1]
    return VOSClipDataset(reader, video, ClipAugment(True, crop_size=(24, 24), crop_scale=(0.2, 0.6), seed=0),
                          MaxSkip(3, 3), repeat=4, seed=0)


def test_two_workers_draw_different_augmentations(synth) -> None:
    root = synth("davis")
    seen = {}
    for init in (worker_init_fn, None):
        loader = DataLoader(_one_video_dataset(root), batch_size=1, num_workers=2, collate_fn=collate_clips,
                            worker_init_fn=init, generator=torch.Generator().manual_seed(0))
        batches = list(loader)  # items 0, 2 from worker 0; items 1, 3 from worker 1
        seen[init is not None] = torch.equal(batches[0]["frames"], batches[1]["frames"])
    assert seen[True] is False, "with worker_init_fn the two workers must differ"
    assert seen[False] is True, "without it they copy one RNG (the pitfall this guards against)"


def test_same_seed_reproduces_batches(cache: str) -> None:
    def batches(seed: int) -> list[torch.Tensor]:
        dm = VOSDataModule(synthetic=TINY, cache_dir=cache, crop_size=(32, 32), batch_size=1, num_workers=2, seed=seed)
        return [b["frames"] for b in dm.train_dataloader()]

    first, again, other = batches(1), batches(1), batches(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_synthetic_cache_is_reused_and_keyed(cache: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = VOSDataModule(synthetic=TINY, cache_dir=cache).resolved_root()
    stamp = (a / "synthetic.json").stat().st_mtime_ns
    b = VOSDataModule(synthetic=dict(TINY), cache_dir=cache).resolved_root()
    assert a == b and (b / "synthetic.json").stat().st_mtime_ns == stamp
    c = VOSDataModule(synthetic={**TINY, "seed": 9}, cache_dir=cache).resolved_root()
    assert c != a
    monkeypatch.setenv("VIDSEG_CACHE", str(tmp_path / "env"))
    d = VOSDataModule(synthetic=TINY).resolved_root()
    assert d.parent == tmp_path / "env" / "synthetic" and d.name == a.name


def test_yaml_config_instantiates(cache: str) -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(VOSDataModule, "data")
    cfg = parser.parse_string(
        f"data:\n  root: synthetic\n  cache_dir: {cache}\n  protocol: cfbi\n  crop_size: [32, 32]\n"
        "  synthetic:\n    height: 48\n    width: 80\n    num_frames: 12\n    num_videos: 2\n    num_val_videos: 1\n"
    )
    dm = parser.instantiate(cfg)["data"]
    assert isinstance(dm, VOSDataModule) and dm.protocol == "cfbi" and dm.synthetic.height == 48
    assert np.asarray(next(iter(dm.val_dataloader()))["frames"].shape).tolist()[-2:] == [48, 80]


def test_bad_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.root"):
        VOSDataModule(root=str(tmp_path / "missing")).resolved_root()
    with pytest.raises(ConfigError, match="data.synthetic"):
        VOSDataModule(synthetic={"nope": 1})
    with pytest.raises(ConfigError, match="protocol"):
        VOSDataModule(protocol="other")


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_vis_joint_training_with_coco_pseudo_videos(synth, tmp_path: Path) -> None:
    import shutil

    from vidseg_common.data.formats.coco import write_coco_json
    from vidseg_common.data.formats.common import write_rgb
    from vidseg_common.data.formats.youtube_vis import YouTubeVISReader

    root = tmp_path / "vis"
    shutil.copytree(synth("youtube_vis", num_frames=20), root)
    vis = YouTubeVISReader(root / "train.json", root / "train" / "JPEGImages")
    images, instances = [], []
    for vid in vis.video_ids():
        video = vis.read_video(vid)
        write_rgb(root / "coco" / f"{vid}.jpg", video.frames[0])
        images.append({"id": vid, "file_name": f"{vid}.jpg", "height": 48, "width": 80})
        instances += [{"image_id": vid, "category_id": i.category_id, "mask": i.masks[0]} for i in video.instances if i.valid[0]]
    write_coco_json(root / "coco.json", images, instances, vis.categories)
    dm = VISDataModule(root=str(root), coco_json="coco.json", coco_images="coco", coco_category_map="none",
                       batch_size=1, num_workers=0, max_size=None, pseudo_rotation=20.0)
    dm.setup("fit")
    train = dm.datasets["train"]
    assert len(train) == len(vis.video_ids()) * 2
    item = train[len(vis.video_ids())]  # first COCO pseudo-video
    frames, target = item["frames"], item["target"]
    assert frames.shape[:2] == (5, 3) and target["masks"].shape[1] == 5
    assert not all(torch.equal(frames[0], frames[t]) for t in range(1, 5)), "pseudo-video frames are transformed"
    assert target["valid"].any(1).all()


def test_vss_tdnet_rotation_is_clip_consistent_and_bounded() -> None:
    """TDNet's ±5° rotation: one angle per clip (identical frames stay identical), labels nearest-resampled with
    255 where the frame is left, and the angle (slope of a rotated horizontal boundary) within ±5°."""
    from vidseg_common.data.datamodules.vss import RotatedClipAugment

    h, w = 64, 128
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[h // 2 :] = 200
    label = np.zeros((h, w), dtype=np.uint8)
    label[h // 2 :] = 1
    augment = RotatedClipAugment(5.0, ClipAugment(False), seed=0)
    angles = []
    for _ in range(6):
        frames, masks = augment(np.stack([image] * 3), np.stack([label] * 3))
        assert torch.equal(frames[0], frames[2]) and (masks[0] == masks[2]).all()
        assert set(np.unique(masks).tolist()) <= {0, 1, 255}
        cols = np.arange(16, w - 16)
        rows = np.array([np.argmax(masks[0][:, c] == 1) for c in cols])
        angles.append(np.degrees(np.arctan(np.polyfit(cols, rows, 1)[0])))
        if abs(angles[-1]) > 1.0:  # the corners leave the frame: ignore fill
            assert (masks[0, [0, -1]][:, [0, -1]] == 255).any()
    assert all(abs(a) <= 5.0 + 0.5 for a in angles) and np.ptp(angles) > 0.5  # random, bounded


def test_vss_crop_ratio_and_rotation_options(cache: str) -> None:
    """crop_ratio reaches the RandomResizedCrop; a rotated training clip has 255 fill in its label."""
    dm = VSSDataModule(synthetic={"height": 48, "width": 80}, cache_dir=cache, crop_size=(32, 64), crop_ratio=(2.0, 2.0),
                       rotate_degrees=5.0, batch_size=2, num_workers=0, num_previous=1, hflip_prob=0.0)
    dm.setup("fit")
    augment = dm.datasets["train"].augment
    (crop,) = [t for t in augment.augment.compose.transforms if type(t).__name__ == "RandomResizedCrop"]
    assert tuple(crop.ratio) == (2.0, 2.0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 2, 3, 32, 64) and (batch["label"] == 255).any()
    with pytest.raises(ConfigError, match="rotate_degrees"):
        VSSDataModule(synthetic={"height": 48, "width": 80}, cache_dir=cache, rotate_degrees=-1.0)
