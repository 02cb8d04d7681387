"""mIoU (torchmetrics confusion matrix, Cityscapes conventions), ETC temporal consistency, flow backends."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vidseg_common.data.formats.flow import write_flo
from vidseg_common.errors import ConfigError
from vidseg_common.metrics.flow import DISFlow, GroundTruthFlow, RAFTFlow
from vidseg_common.metrics.tc import TemporalConsistency, resample_bilinear
from vidseg_common.metrics.vss import SegmentationIoU


def test_miou_hand_example() -> None:
    metric = SegmentationIoU(num_classes=3)
    metric.update(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 0], [1, 255]]]))
    out = metric.compute()
    assert out["IoU"][:2].tolist() == [0.5, 0.5] and math.isnan(float(out["IoU"][2]))
    assert float(out["mIoU"]) == 0.5


def test_miou_equals_split_confusion_matrix() -> None:
    gen = torch.Generator().manual_seed(0)
    metric = SegmentationIoU(num_classes=19)
    hist = np.zeros((19, 19))
    for _ in range(3):  # accumulated over the split, not averaged per image
        target = torch.randint(0, 17, (2, 24, 32), generator=gen)  # classes 17, 18 never in GT
        target[torch.rand(target.shape, generator=gen) < 0.1] = 255
        pred = torch.where(torch.rand(target.shape, generator=gen) < 0.7, target.clamp(max=16), torch.randint(0, 18, target.shape, generator=gen))
        metric.update(pred, target)
        keep = target.numpy() != 255
        hist += np.bincount(19 * target.numpy()[keep] + pred.numpy()[keep], minlength=361).reshape(19, 19)
    with np.errstate(invalid="ignore"):
        iou = np.diag(hist) / (hist.sum(0) + hist.sum(1) - np.diag(hist))
    out = metric.compute()
    np.testing.assert_allclose(out["IoU"].numpy(), iou, rtol=0, atol=1e-12)
    assert float(out["mIoU"]) == pytest.approx(np.nanmean(iou), abs=1e-12)
    assert math.isnan(iou[18]) and not math.isnan(iou[17])  # predicted-only class 17 counts (IoU 0)


def _resample2d_literal(values: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """flownet2 resample2d_kernel.cu (kernel_size 1), one pixel at a time in float32."""
    height, width = values.shape
    out = np.zeros((height, width), np.float32)
    one = np.float32(1)
    for y in range(height):
        for x in range(width):
            xf = np.float32(x) + flow[y, x, 0]
            yf = np.float32(y) + flow[y, x, 1]
            alpha, beta = xf - np.floor(xf), yf - np.floor(yf)
            xl = max(min(int(np.floor(xf)), width - 1), 0)
            xr = max(min(int(np.floor(xf)) + 1, width - 1), 0)
            yt = max(min(int(np.floor(yf)), height - 1), 0)
            yb = max(min(int(np.floor(yf)) + 1, height - 1), 0)
            val = np.float32(0)
            val += (one - alpha) * (one - beta) * values[yt, xl]
            val += alpha * (one - beta) * values[yt, xr]
            val += (one - alpha) * beta * values[yb, xl]
            val += alpha * beta * values[yb, xr]
            out[y, x] = val
    return out


def _etc_reference(preds: np.ndarray, flows: np.ndarray, num_classes: int) -> float:
    """ETC eval_tc.py: warp, uint8 cast, intersectionAndUnion with np.histogram, sums over pairs."""
    inter_sum = union_sum = 0
    for t in range(len(preds) - 1):
        warped = _resample2d_literal(preds[t + 1].astype(np.float32), flows[t]).astype(np.uint8)
        output, target = preds[t].reshape(-1).copy(), warped.reshape(-1)
        output[np.where(target == 255)[0]] = 255
        intersection = output[np.where(output == target)[0]]
        area_i, _ = np.histogram(intersection, bins=np.arange(num_classes + 1))
        area_o, _ = np.histogram(output, bins=np.arange(num_classes + 1))
        area_t, _ = np.histogram(target, bins=np.arange(num_classes + 1))
        inter_sum = inter_sum + area_i
        union_sum = union_sum + area_o + area_t - area_i
    return float(np.mean(inter_sum / (union_sum + 1e-10)))


def test_etc_mode_equals_literal_etc() -> None:
    rng = np.random.default_rng(0)
    preds = np.kron(rng.integers(0, 5, (4, 4, 5)), np.ones((1, 4, 3), dtype=np.int64)).astype(np.uint8)  # (4, 16, 15)
    flows = (rng.normal(0, 2.5, (3, 16, 15, 2))).astype(np.float32)
    flows[0, :3] = 0.5  # exact half-pixel and out-of-frame samples
    flows[1, :, :2, 0] = -40.0
    got = resample_bilinear(torch.from_numpy(preds[1:]), torch.from_numpy(flows))
    for t in range(3):
        np.testing.assert_array_equal(got[t].numpy(), _resample2d_literal(preds[t + 1].astype(np.float32), flows[t]))
    metric = TemporalConsistency(num_classes=6, mode="etc")
    metric.update(torch.from_numpy(preds), torch.from_numpy(flows))
    assert float(metric.compute()["TC"]) == pytest.approx(_etc_reference(preds, flows, 6), abs=1e-12)


def test_clean_mode_is_perfect_for_perfect_predictions_with_gt_flow() -> None:
    height, width, steps = 32, 40, 4
    preds = torch.zeros(steps, height, width, dtype=torch.long)
    flows = torch.zeros(steps - 1, height, width, 2)
    back = torch.zeros_like(flows)
    for t in range(steps):
        preds[t, 8:20, 5 + 3 * t : 17 + 3 * t] = 1  # a square moving 3 px right per frame
    for t in range(steps - 1):
        flows[t][preds[t] == 1] = torch.tensor([3.0, 0.0])
        back[t][preds[t + 1] == 1] = torch.tensor([-3.0, 0.0])
    clean = TemporalConsistency(num_classes=2, mode="clean")
    clean.update(preds, flows, back)
    assert float(clean.compute()["TC"]) == 1.0
    etc = TemporalConsistency(num_classes=2, mode="etc")
    etc.update(preds, flows)
    assert 0.8 < float(etc.compute()["TC"]) < 1.0  # disocclusions are not masked in ETC's definition


def test_flow_backends(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    texture = (rng.random((40, 48)) * 255).astype(np.uint8)
    import cv2

    texture = cv2.resize(texture, (192, 160), interpolation=cv2.INTER_CUBIC)
    image_t = texture[10:138, 10:170]
    image_t1 = texture[7:135, 5:165]  # content moves by (+5, +3)
    flow = DISFlow("medium")("v", "0", image_t, image_t1)
    assert np.median(flow[20:-20, 20:-20, 0]) == pytest.approx(5.0, abs=0.25)
    assert np.median(flow[20:-20, 20:-20, 1]) == pytest.approx(3.0, abs=0.25)
    write_flo(tmp_path / "v" / "00000.flo", flow)
    np.testing.assert_array_equal(GroundTruthFlow(tmp_path)("v", "00000", image_t), flow)
    with pytest.raises(ConfigError, match="not found"):
        RAFTFlow(tmp_path / "missing.pth")
