"""Synthetic DAVIS written back as a prediction of itself scores J&F = 1 with the project's DAVIS metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidseg_common.data.formats.davis import DavisReader, write_vos_masks
from vidseg_common.metrics.davis_folder import davis_sequences, load_gt, load_prediction
from vidseg_common.metrics.jandf import JandF


def test_synthetic_davis_is_a_perfect_prediction_of_itself(synth, tmp_path: Path) -> None:
    root = synth("davis", full_occlusion=True, min_objects=2, max_objects=3, camera_speed=2, corruption_prob=0.2,
                 height=64, width=112, num_frames=10)
    reader = DavisReader(root)
    metric = JandF()
    for video in reader.videos("val"):
        record = reader.read_video(video)
        write_vos_masks(tmp_path, video, record.frame_names, record.masks)  # our prediction writer
    for seq in davis_sequences(root, "val"):  # the metrics code's own strict reader
        gt, names = load_gt(root, seq)
        pred = load_prediction(tmp_path, seq, names, gt.shape[1:])
        metric.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)), seq)
    result = metric.compute()
    assert result["J&F-Mean"].item() == 1.0
    assert result["J-Mean"].item() == 1.0 and result["F-Mean"].item() == 1.0
    # sanity: the score is not trivially 1 — dropping an object lowers it
    metric2 = JandF()
    gt, names = load_gt(root, davis_sequences(root, "val")[0])
    worse = gt.copy()
    worse[worse == 1] = 0
    metric2.update(torch.from_numpy(worse.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)), "x")
    assert metric2.compute()["J&F-Mean"].item() < 1.0
