"""``VideoInstances``: aligned fields, indexing, concatenation, checks."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.tasks.instances import VideoInstances


def _instances(n: int, offset: int = 0) -> VideoInstances:
    masks = torch.zeros(n, 3, 4, 5, dtype=torch.bool)
    for i in range(n):
        masks[i, :, i % 4, :] = True
    return VideoInstances(masks=masks, labels=torch.arange(n) + offset, scores=torch.linspace(1, 0, n))


def test_indexing_selects_sequences() -> None:
    inst = _instances(4)
    assert len(inst) == 4 and inst.image_size == (4, 5)
    assert inst[1].labels.tolist() == [1] and inst[-1].labels.tolist() == [3]
    assert inst[inst.scores > 0.5].labels.tolist() == [0, 1]
    assert inst[[3, 0]].labels.tolist() == [3, 0] and torch.equal(inst[[3, 0]].masks[1], inst.masks[0])
    assert inst[1:3].boxes is None


def test_cat_and_as_dict() -> None:
    joined = VideoInstances.cat([_instances(2), _instances(3, offset=10)])
    assert joined.labels.tolist() == [0, 1, 10, 11, 12] and joined.masks.shape == (5, 3, 4, 5)
    assert set(joined.as_dict()) == {"masks", "labels", "scores"}
    with pytest.raises(ValueError, match="some items only"):
        VideoInstances.cat([_instances(1), VideoInstances(masks=torch.zeros(1, 3, 4, 5, dtype=torch.bool),
                                                          labels=torch.zeros(1, dtype=torch.long))])


def test_misaligned_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="labels has 2 rows"):
        VideoInstances(masks=torch.zeros(3, 1, 2, 2, dtype=torch.bool), labels=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(N, T, H, W\)"):
        VideoInstances(masks=torch.zeros(3, 2, 2, dtype=torch.bool), labels=torch.zeros(3, dtype=torch.long))


def test_from_target() -> None:
    target = {"masks": torch.ones(2, 3, 4, 4), "labels": torch.tensor([1, 2]), "valid": torch.ones(2, 3, dtype=torch.bool)}
    inst = VideoInstances.from_target(target)
    assert inst.masks.dtype == torch.bool and inst.valid is not None and inst.scores is None
