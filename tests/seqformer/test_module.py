"""``SeqFormerModule`` wiring: paper optimizer groups, and whole-video scoring through ``VideoAP``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from vidseg_common.errors import ConfigError
from vidseg_common.tasks.instances import VideoInstances
from vidseg_seqformer.module import SeqFormerModule

TINY = dict(backbone="test_resnet", frozen_backbone=[], num_classes=5, num_queries=4, hidden_dim=32, ffn_dim=64,
            num_encoder_layers=1, num_decoder_layers=1, num_heads=4, encoder_points=2, decoder_points=2)


def test_paper_optimizer_groups() -> None:
    """AdamW 2e-4; backbone, sampling_offsets and reference_points at ×0.1 (docs/reference/vis.md §3.7)."""
    module = SeqFormerModule(**TINY)
    optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    lr_of = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            lr_of[id(param)] = group["lr"]
    names = dict(module.named_parameters())
    assert lr_of[id(names["model.reference_points.weight"])] == pytest.approx(2e-5)
    assert lr_of[id(names["model.encoder.layers.0.self_attn.sampling_offsets.weight"])] == pytest.approx(2e-5)
    assert lr_of[id(names["model.decoder.layers.0.cross_attn.sampling_offsets.bias"])] == pytest.approx(2e-5)
    assert lr_of[id(names["model.backbone.body.conv1.0.weight"])] == pytest.approx(2e-5)
    assert lr_of[id(names["model.decoder.layers.0.time_attention_weights.weight"])] == pytest.approx(2e-4)
    assert lr_of[id(names["model.class_embed.0.weight"])] == pytest.approx(2e-4)


def test_bad_hyperparameters_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="hidden_dim"):
        SeqFormerModule(**{**TINY, "hidden_dim": 48})
    with pytest.raises(ConfigError, match="backbone_out_indices"):
        SeqFormerModule(**{**TINY, "backbone_out_indices": [1, 2, 3]})


def _batch(target: dict[str, torch.Tensor], padded: tuple[int, int], original: tuple[int, int]) -> dict:
    n, t = target["masks"].shape[:2]
    masks = torch.zeros(n, t, *padded, dtype=torch.bool)
    masks[..., : original[0], : original[1]] = target["masks"]
    return {"frames": torch.zeros(1, t, 3, *padded), "meta": [{"video_id": 7, "size": original}],
            "targets": [{**target, "masks": masks}]}


@pytest.mark.parametrize(("shift_label", "expected_ap"), [(0, 1.0), (1, 0.0)])
def test_validation_scores_original_size(
    monkeypatch: pytest.MonkeyPatch, make_target: Callable, shift_label: int, expected_ap: float
) -> None:
    """An oracle at the original size scores AP 1 after the module crops the padded ground truth; wrong labels 0."""
    module = SeqFormerModule(**TINY)
    original = (60, 90)
    target = make_target([1, 3], 3, original, seed=4)
    oracle = VideoInstances(masks=target["masks"], scores=torch.tensor([0.9, 0.8]), labels=target["labels"] + shift_label)
    monkeypatch.setattr(module, "infer", lambda batch: oracle if module.sizes(batch)[2] == original else None)
    module.validation_step(_batch(target, (64, 96), original), 0)
    assert float(module.val_ap.compute()["AP"]) == pytest.approx(expected_ap)


def test_render_overlay_draws_original_size_masks_on_the_unpadded_frame(make_target: Callable) -> None:
    import numpy as np

    module = SeqFormerModule(**TINY, overlay_max_instances=1)
    original = (60, 90)  # no datamodule: the content is the top-left original-size region of the padded input
    target = make_target([1, 3], 3, original, seed=4)
    batch = _batch(target, (64, 96), original)
    masks = torch.zeros(2, 3, *original, dtype=torch.bool)
    masks[0, 0, :10, :10] = True  # lower score: left out
    masks[1, 0, 30:, 45:] = True
    preds = VideoInstances(masks=masks, scores=torch.tensor([0.3, 0.9]), labels=torch.tensor([1, 3]))
    image = module.render_overlay(batch, {"instances": preds})
    base = module.render_overlay(batch, {"instances": VideoInstances(masks=torch.zeros_like(masks), scores=preds.scores,
                                                                     labels=preds.labels)})
    assert image.shape == (60, 90, 3) and image.dtype == np.uint8
    changed = (image != base).any(-1)
    assert changed[40:, 60:].all() and not changed[:10, :10].any()
