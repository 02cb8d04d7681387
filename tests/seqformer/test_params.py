"""Parameter counts against the paper / released code (reference/vis.md §3.1, verified there by running the code).

The paper's 49.3 M is the released model's ``state_dict`` numel (FrozenBN buffers included), in which the six
``bbox_embed`` MLPs are stored twice and every encoder layer carries an unused ``output_proj_box``. Our model
stores neither copy; the two terms are computed from our own modules, not typed in.
"""

from __future__ import annotations

import pytest

from vidseg_common.engine.batchnorm import freeze_batchnorm
from vidseg_seqformer.model import SeqFormer


def _counts(backbone: str) -> tuple[int, int]:
    model = SeqFormer(backbone, pretrained=False)
    model.backbone = freeze_batchnorm(model.backbone)
    state = sum(v.numel() for v in model.state_dict().values())
    unique = sum(p.numel() for p in model.parameters())
    duplicate_bbox = sum(p.numel() for p in model.decoder.bbox_embed.parameters())
    unused_box_proj = sum(p.numel() for p in model.decoder.layers[0].output_proj_box.parameters()) * len(model.encoder.layers)
    return state + duplicate_bbox + unused_box_proj, unique + unused_box_proj


@pytest.mark.parametrize(("backbone", "state_numel", "unique"), [
    ("resnet50", 49_306_085, 48_404_173),
    ("resnet101", 68_350_437, 67_344_077),
])
def test_state_dict_numel_matches_released_code(backbone: str, state_numel: int, unique: int) -> None:
    assert _counts(backbone) == (state_numel, unique)


def test_trainable_r50_matches_released_code() -> None:
    """conv1 + layer1 frozen: 48,181,773 trainable in the released R50 model (+ the unused encoder projections)."""
    model = SeqFormer("resnet50", pretrained=False)
    model.backbone = freeze_batchnorm(model.backbone)
    unused = sum(p.numel() for p in model.decoder.layers[0].output_proj_box.parameters()) * len(model.encoder.layers)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) + unused == 48_181_773
