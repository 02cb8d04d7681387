"""Clip augmentation: one geometric transform for all frames, masks aligned, boxes, padding, resizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_erosion
from torchvision.ops import box_convert, masks_to_boxes

from vidseg_common.data.transforms import ClipAugment, masks_to_boxes_cxcywh


def textured_frame(rng: np.random.Generator, h: int = 60, w: int = 90) -> tuple[np.ndarray, np.ndarray]:
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[10:35, 20:50] = 1
    mask[40:55, 60:85] = 2
    mask[0:3, :] = 255
    return frame, mask


@pytest.mark.parametrize("seed", range(4))
def test_identical_frames_stay_identical(seed: int) -> None:
    frame, mask = textured_frame(np.random.default_rng(seed))
    clip, masks = np.stack([frame] * 5), np.stack([mask] * 5)
    aug = ClipAugment(train=True, crop_size=(40, 48), crop_scale=(0.3, 0.8), hflip_prob=0.5,
                      color_jitter=(0.4, 0.4, 0.4, 0.1), pad_divisor=32, seed=seed)
    out, out_masks = aug(clip, masks)
    assert out.shape == (5, 3, 64, 64) and out.dtype == torch.float32
    assert out_masks.shape == (5, 64, 64)
    for t in range(1, 5):
        assert torch.equal(out[t], out[0])
        assert np.array_equal(out_masks[t], out_masks[0])
    assert (out_masks[0][40:, :] == 255).all() and (out_masks[0][:, 48:] == 255).all()  # padding is ignore


def test_masks_follow_the_frames() -> None:
    """Paint each object id into the red channel: after flip+crop+resize the colours still match the ids."""
    rng = np.random.default_rng(0)
    _, mask = textured_frame(rng)
    frame = np.zeros((*mask.shape, 3), dtype=np.uint8)
    frame[..., 0] = np.where(mask == 255, 0, mask * 100)
    aug = ClipAugment(train=True, crop_size=(50, 50), crop_scale=(0.4, 0.9), color_jitter=None,
                      mean=(0, 0, 0), std=(1 / 255, 1 / 255, 1 / 255), seed=3)
    for _ in range(5):
        out, out_masks = aug(np.stack([frame] * 2), np.stack([mask] * 2))
        red = out[0, 0].numpy()
        # away from object borders (interpolation blends there) colour and id must agree
        inner = binary_erosion((out_masks[0] == 1) | (out_masks[0] == 2), iterations=2)
        agree = np.abs(red[inner] - out_masks[0][inner] * 100) < 30
        assert inner.sum() > 0 and agree.all()


def test_short_side_resize_and_cap() -> None:
    frames = np.zeros((2, 100, 300, 3), dtype=np.uint8)
    out, _ = ClipAugment(train=False, short_side=50)(frames)
    assert out.shape[-2:] == (50, 150)
    out, _ = ClipAugment(train=False, short_side=80, max_size=120)(frames)
    assert out.shape[-2:] == (40, 120)
    out, _ = ClipAugment(train=False, max_size=1000)(frames)  # a cap never enlarges
    assert out.shape[-2:] == (100, 300)


def test_normalisation() -> None:
    frames = np.full((1, 4, 4, 3), 255, dtype=np.uint8)
    out, _ = ClipAugment(train=False)(frames)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(out[0, :, 0, 0], expected, atol=1e-5)


def test_boxes_match_torchvision() -> None:
    rng = np.random.default_rng(1)
    masks = rng.random((3, 4, 20, 30)) > 0.97
    masks[1, 2] = False
    boxes, valid = masks_to_boxes_cxcywh(masks)
    assert valid.tolist() == masks.any(axis=(2, 3)).tolist()
    flat = torch.from_numpy(masks.reshape(-1, 20, 30))
    nonempty = flat.flatten(1).any(1)
    xyxy = masks_to_boxes(flat[nonempty]).double()
    xyxy[:, 2:] += 1  # torchvision's max is inclusive; a box spans whole pixels
    ref = box_convert(xyxy, "xyxy", "cxcywh") / torch.tensor([30.0, 20.0, 30.0, 20.0], dtype=torch.float64)
    ours = torch.from_numpy(boxes.reshape(-1, 4)).double()
    assert torch.allclose(ours[nonempty], ref, atol=1e-6)
    assert (ours[~nonempty] == 0).all()


def test_instance_channels_and_no_instances() -> None:
    frames = np.zeros((3, 40, 60, 3), dtype=np.uint8)
    masks = np.zeros((3, 40, 60, 2), dtype=np.uint8)
    masks[:, 5:10, 5:10, 0] = 1
    aug = ClipAugment(train=True, crop_size=(32, 32), crop_scale=(1.0, 1.0), mask_fill=0, seed=0)
    _, out = aug(frames, masks)
    assert out.shape == (3, 32, 32, 2)
    _, empty = aug(frames, masks[..., :0])
    assert empty.shape == (3, 32, 32, 0)
