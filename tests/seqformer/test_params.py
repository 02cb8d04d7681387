"""Parameter counts against the paper / released code (docs/reference/vis.md §3.1, verified there by running the code).

The paper's 49.3 M is the released model's ``state_dict`` numel (FrozenBN buffers included), in which the six
``bbox_embed`` MLPs are stored twice and every encoder layer carries an unused ``output_proj_box``. Our model
stores neither copy; the two terms are computed from our own modules, not typed in.
"""

from __future__ import annotations

import pytest

from vidseg_common.engine.batchnorm import freeze_batchnorm
from vidseg_seqformer.model import SeqFormer


def _counts(backbone: str) -> tuple[int, int, int]:
    model = SeqFormer(backbone, pretrained=False)
    model.backbone = freeze_batchnorm(model.backbone)
    state = sum(v.numel() for v in model.state_dict().values())
    unique = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)  # conv1 + layer1 frozen
    duplicate_bbox = sum(p.numel() for p in model.decoder.bbox_embed.parameters())
    unused_box_proj = sum(p.numel() for p in model.decoder.layers[0].output_proj_box.parameters()) * len(model.encoder.layers)
    return state + duplicate_bbox + unused_box_proj, unique + unused_box_proj, trainable + unused_box_proj


@pytest.mark.parametrize(("backbone", "state_numel", "unique", "trainable"), [
    ("resnet50", 49_306_085, 48_404_173, 48_181_773),
    ("resnet101", 68_350_437, 67_344_077, None),
])
def test_parameter_counts_match_released_code(backbone: str, state_numel: int, unique: int, trainable: int | None) -> None:
    state, uniq, train = _counts(backbone)
    assert (state, uniq) == (state_numel, unique)
    if trainable is not None:
        assert train == trainable
