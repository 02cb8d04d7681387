"""Whole-video evaluation: replayed corruption flags match the rendered frames; TC of streamed predictions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from vidseg_common.data.formats.cityscapes_sequence import CityscapesSequenceReader
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.generator import generate_dataset
from vidseg_common.data.synthetic.layouts import render_semantic_video
from vidseg_common.errors import ConfigError
from vidseg_common.metrics.tc import TemporalConsistency
from vidseg_stt.video_eval import VideoTC, synthetic_corruptions

CFG = SyntheticConfig(layout="cityscapes", num_videos=1, num_val_videos=2, height=32, width=64, corruption_prob=0.3,
                      camera_speed=2.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synthetic"), CFG, workers=1)


def test_corruption_flags_match_the_rendered_frames(dataset: Path) -> None:
    """The flags equal the frames that differ between the corrupted render and the same scene rendered clean."""
    flags = synthetic_corruptions(dataset, "val")
    clean = dataclasses.replace(CFG, corruption_prob=0.0)
    assert sorted(flags) == ["frankfurt_000000_000019", "frankfurt_000001_000019"]
    for index, stem in enumerate(sorted(flags)):
        corrupted_video, _ = render_semantic_video(CFG, 1, index, 30)
        clean_video, _ = render_semantic_video(clean, 1, index, 30)
        differs = {t - 19 for t in range(30) if not np.array_equal(corrupted_video.frames[t], clean_video.frames[t])}
        assert flags[stem] == differs and differs  # p = 0.3 over 30 frames: bursts do occur here
    assert synthetic_corruptions(dataset / "gtFine", "val") == {}  # not a synthetic root


def test_tc_of_streamed_predictions(dataset: Path) -> None:
    """GT flow of the panning camera (30 frames / 29 flows per snippet): content-bound predictions (bright vs dark
    pixels) score clearly above random ones, and above themselves scored with the flow's sign reversed (the warp
    follows the scene)."""
    reader = CityscapesSequenceReader(dataset, "val")
    video_tc = VideoTC(reader, dataset, flow="gt", num_classes=2, mode="clean", max_videos=1)
    frames, flows = video_tc.video(reader.samples()[0])
    assert frames.shape == (30, 32, 64, 3) and flows.shape == (29, 32, 64, 2)
    assert torch.allclose(flows[..., 0].median(), torch.tensor(-2.0))  # camera pans 2 px per frame

    def transform(clip: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(clip).permute(0, 3, 1, 2).float()

    def bright(frame: torch.Tensor, cache: list) -> torch.Tensor:  # content-bound: class = brightness > median
        grey = frame.mean(1, keepdim=True)
        return torch.cat([grey.median() - grey, grey - grey.median()], dim=1)

    generator = torch.Generator().manual_seed(0)

    def noise(frame: torch.Tensor, cache: list) -> torch.Tensor:  # unrelated to the content: ~1/3 IoU per class
        return torch.rand(1, 2, 32, 64, generator=generator)

    scores = {}
    for name, step in (("bright", bright), ("noise", noise)):
        metric = TemporalConsistency(2, mode="clean")
        video_tc.evaluate(step, transform, metric)
        scores[name] = float(metric.compute()["TC"])
    video_tc._flows = {stem: -flow for stem, flow in video_tc._flows.items()}  # flow with the wrong sign
    metric = TemporalConsistency(2, mode="clean")
    video_tc.evaluate(bright, transform, metric)
    scores["bright, reversed flow"] = float(metric.compute()["TC"])
    assert scores["bright"] > scores["bright, reversed flow"] + 0.05 and scores["bright"] > scores["noise"] + 0.2


def test_gt_flow_needs_flow_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tc_flow=gt"):
        VideoTC(type("R", (), {"samples": lambda self: []})(), tmp_path, flow="gt")
