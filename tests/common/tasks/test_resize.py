"""Undoing the evaluation transform: the batch's sizes (ClipAugment.apply) and the maps brought back to them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidseg_common.data.transforms import ClipAugment
from vidseg_common.tasks.resize import ids_to_original, logits_to_original, masks_to_original, meta_sizes


@pytest.mark.parametrize(("size", "expected"), [((480, 640), (360, 480)), ((100, 1000), (77, 768))])
def test_apply_reports_the_resize_and_the_padding(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """Short side → 360, long side capped at 768 (DETR's rule), then padded to a multiple of 32."""
    augment = ClipAugment(train=False, short_side=360, max_size=768, pad_divisor=32, color_jitter=None)
    clip = augment.apply(np.zeros((2, *size, 3), dtype=np.uint8), np.zeros((2, *size), dtype=np.uint8))
    assert clip.content_size == expected
    padded = tuple(-(-v // 32) * 32 for v in expected)
    assert clip.padded_size == padded and tuple(clip.frames.shape[-2:]) == padded and clip.masks.shape[1:] == padded


def test_train_crop_is_the_content() -> None:
    augment = ClipAugment(train=True, crop_size=(24, 40), pad_divisor=16, seed=0)
    clip = augment.apply(np.zeros((2, 50, 60, 3), dtype=np.uint8))
    assert clip.content_size == (24, 40) and clip.padded_size == (32, 48)


def test_masks_to_original_crops_padding_then_resizes() -> None:
    logits = torch.full((1, 2, 8, 8), -10.0)
    logits[..., :4, :2] = 10.0  # top-left quarter rows, quarter columns of the 32×32 input
    masks = masks_to_original(logits, (32, 32), (16, 16), (32, 32))
    assert masks.shape == (1, 2, 32, 32)
    frac = masks[0, 0].float().mean()
    assert 0.45 < float(frac) < 0.55  # 16×8 of the 16×16 content → ≈ half of the frame after up-sampling
    assert masks_to_original(logits[:0], (32, 32), (16, 16), (20, 20)).shape == (0, 2, 20, 20)


def test_ids_crop_and_nearest_resize() -> None:
    ids = torch.zeros(3, 8, 8, dtype=torch.long)
    ids[:, :2, :2] = 4
    ids[:, 6:, :] = 255  # padding rows are cropped away
    out = ids_to_original(ids, (6, 8), (12, 16))
    assert out.shape == (3, 12, 16) and out.dtype == torch.long
    assert set(out.unique().tolist()) == {0, 4} and int((out == 4).sum()) == 3 * 16
    assert torch.equal(ids_to_original(ids, (6, 8), (6, 8)), ids[:, :6])


def test_logits_at_input_size_are_only_cropped() -> None:
    logits = torch.randn(1, 5, 16, 24)
    assert torch.equal(logits_to_original(logits, (16, 24), (10, 20), (10, 20)), logits[..., :10, :20])


def test_meta_sizes_defaults_to_the_unpadded_input() -> None:
    assert meta_sizes({"size": (40, 50)}, (48, 64)) == ((40, 50), (40, 50))
    assert meta_sizes({"size": (400, 500), "resized_size": (40, 50)}, (48, 64)) == ((40, 50), (400, 500))
