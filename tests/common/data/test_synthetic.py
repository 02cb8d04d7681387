"""Behaviour of the synthetic generator: exact flow, occlusion and reappearance, late entry, distractors."""

from __future__ import annotations

import numpy as np
import pytest

from vidseg_common.data.formats.cityscapes import LABEL_TO_TRAIN_ID
from vidseg_common.data.formats.cityscapes_sequence import CityscapesSequenceReader
from vidseg_common.data.formats.flow import read_flo
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.layouts import render_instance_video, render_semantic_video
from vidseg_common.errors import ConfigError


def warp_agreement(ids: np.ndarray, flow: np.ndarray) -> float:
    """Fraction of in-frame pixels whose id at t equals the id at ``x + flow`` in t+1 (nearest)."""
    h, w = ids.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w]
    scores = []
    for t in range(len(flow)):
        x1 = np.rint(xs + flow[t, ..., 0]).astype(int)
        y1 = np.rint(ys + flow[t, ..., 1]).astype(int)
        inside = (x1 >= 0) & (x1 < w) & (y1 >= 0) & (y1 < h)
        same = ids[t + 1][y1.clip(0, h - 1), x1.clip(0, w - 1)] == ids[t]
        scores.append((same & inside).sum() / inside.sum())
    return float(np.min(scores))


def test_flow_carries_ids_to_next_frame() -> None:
    cfg = SyntheticConfig(layout="youtube_vos", height=96, width=160, min_objects=3, max_objects=3, camera_speed=3,
                          max_speed=0.03, max_rotation=0.1)
    video, ids, _ = render_instance_video(cfg, 0, 0, 12)
    assert video.flow is not None and video.flow.shape == (11, 96, 160, 2)
    # only occlusion boundaries and rounding may disagree
    assert warp_agreement(ids, video.flow) > 0.95
    # and the flow is not trivially zero: objects and camera move
    assert np.abs(video.flow).mean() > 1.0


def test_flow_files_written(synth) -> None:
    root = synth("cityscapes", camera_speed=2)
    reader = CityscapesSequenceReader(root, "val")
    stem = reader.samples()[0]
    flows = sorted((root / "flow" / stem).glob("*.flo"))
    assert len(flows) == 29  # 30 frames, forward flow t -> t+1
    assert read_flo(flows[0]).shape == (48, 80, 2)


def test_full_occlusion_and_reappearance() -> None:
    cfg = SyntheticConfig(layout="youtube_vos", min_objects=2, max_objects=2, full_occlusion=True, height=96, width=160)
    _, ids, _ = render_instance_video(cfg, 0, 0, 30)
    visible = np.array([[(ids[t] == k).any() for k in (1, 2)] for t in range(30)])
    reappears = []
    for k in range(2):
        seen = np.flatnonzero(visible[:, k])
        # a gap between two visible frames: vanished completely, then seen again
        reappears.append(bool(seen.size) and bool(np.any(np.diff(seen) > 1)))
    assert any(reappears), "one object must vanish completely mid-video and reappear"


def test_late_entry_and_distractor_categories() -> None:
    cfg = SyntheticConfig(layout="youtube_vis", min_objects=4, max_objects=4, late_entry=True, similar_distractor=True,
                          height=96, width=160, seed=1)
    firsts, same_category = [], 0
    for index in range(4):
        _, ids, cats = render_instance_video(cfg, 0, index, 20, np.arange(0, 20, 5))
        firsts += [int(np.argmax([(ids[t] == k).any() for t in range(20)])) for k in range(1, len(cats) + 1)]
        same_category += len(cats) != len(set(cats))
    assert max(firsts) > 0, "some object enters after frame 0"
    assert same_category == 4, "the similar distractor repeats a category in every video"


def test_semantic_scene_uses_real_cityscapes_classes(synth) -> None:
    reader = CityscapesSequenceReader(synth("cityscapes"), "train")
    train_ids = reader.read_label(reader.samples()[0])
    present = set(np.unique(train_ids).tolist())
    assert {0, 1, 2, 10} <= present  # road, sidewalk, building, sky
    assert 255 in present  # ego-vehicle strip is ignore
    assert present <= set(LABEL_TO_TRAIN_ID.tolist())


def test_corruption_changes_frames_not_labels() -> None:
    clean = SyntheticConfig(layout="cityscapes", corruption_prob=0.0)
    noisy = SyntheticConfig(layout="cityscapes", corruption_prob=0.5, corruption_length=2)
    v0, l0 = render_semantic_video(clean, 0, 0, 10)
    v1, l1 = render_semantic_video(noisy, 0, 0, 10)
    assert (l0 == l1).all()
    changed = [not np.array_equal(a, b) for a, b in zip(v0.frames, v1.frames)]
    assert 0 < sum(changed) < 10


@pytest.mark.parametrize(
    "options",
    [{"layout": "davis", "late_entry": True}, {"layout": "nope"}, {"min_objects": 3, "max_objects": 2}, {"height": 8}],
)
def test_bad_options(options: dict) -> None:
    with pytest.raises(ConfigError):
        SyntheticConfig(**options)
