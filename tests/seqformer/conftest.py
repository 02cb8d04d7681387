"""Shared helpers of the SeqFormer tests: a tiny network and random targets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from vidseg_seqformer.model import SeqFormer

TINY = dict(backbone="test_resnet", backbone_frozen=(), num_classes=5, num_queries=6, d_model=32, d_ffn=64, dropout=0.0,
            enc_layers=1, dec_layers=2, n_heads=4, enc_points=2, dec_points=2, num_feature_levels=4)


@pytest.fixture
def tiny_model() -> SeqFormer:
    torch.manual_seed(0)
    return SeqFormer(**TINY)


def box_target(labels: list[int], num_frames: int, size: tuple[int, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Rectangles moving slowly: ``labels (N,)``, ``masks (N, T, H, W)``, ``boxes (N, T, 4)`` cxcywh, ``valid``."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    masks = torch.zeros(len(labels), num_frames, h, w, dtype=torch.bool)
    boxes = torch.zeros(len(labels), num_frames, 4)
    for n in range(len(labels)):
        y0, x0 = int(torch.randint(0, h // 2, (1,), generator=gen)), int(torch.randint(0, w // 2, (1,), generator=gen))
        bh, bw = h // 3, w // 3
        for t in range(num_frames):
            x = min(x0 + 2 * t, w - bw)
            masks[n, t, y0 : y0 + bh, x : x + bw] = True
            boxes[n, t] = torch.tensor([(x + bw / 2) / w, (y0 + bh / 2) / h, bw / w, bh / h])
    return {"labels": torch.tensor(labels), "masks": masks, "boxes": boxes, "valid": masks.flatten(2).any(2)}


@pytest.fixture
def make_target() -> Callable[..., dict[str, torch.Tensor]]:
    """:func:`box_target` as a fixture (test modules cannot import conftest under ``--import-mode=importlib``)."""
    return box_target


@pytest.fixture
def tiny_kwargs() -> dict:
    """Constructor arguments of the tiny network."""
    return dict(TINY)
