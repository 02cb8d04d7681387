"""Swin backbones (issue 9, ``experiments/seqformer/ytvis19_swinl.yaml``): C3–C5 from timm's Swin-L, any input size."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import yaml

from vidseg_seqformer.model import SeqFormer

REPO = Path(__file__).resolve().parents[2]
SMALL_TRANSFORMER = dict(num_classes=5, num_queries=4, d_model=32, d_ffn=64, dropout=0.0, enc_layers=1, dec_layers=1,
                         n_heads=4, enc_points=2, dec_points=2)


def _swinl_model_options() -> dict:
    options: dict = {}
    for name in ("ytvis19_r50.yaml", "ytvis19_swinl.yaml"):  # the overlay as the CLI applies it
        options.update(yaml.safe_load((REPO / "experiments" / "seqformer" / name).read_text())["model"])
    return options


def test_swin_large_config_gives_c3_c5() -> None:
    """The committed Swin-L overlay builds SeqFormer on C3–C5 (strides 8/16/32, 384/768/1536 channels)."""
    options = _swinl_model_options()
    assert options["backbone"] == "swin_large_patch4_window12_384"
    with torch.device("meta"):  # shapes only: no 197 M-parameter initialisation
        model = SeqFormer(backbone=options["backbone"], pretrained=False, backbone_frozen=options["frozen_backbone"],
                          backbone_indices=options["backbone_out_indices"], num_queries=options["num_queries"])
    assert model.backbone.names == ["f8", "f16", "f32"]
    assert model.backbone.strides == [8, 16, 32]
    assert model.backbone.channels == [384, 768, 1536]
    assert [proj[0].in_channels for proj in model.input_proj] == [384, 768, 1536, 1536]  # C6 from C5
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_swin_takes_inputs_other_than_its_build_size() -> None:
    """timm builds Swin for one size; SeqFormer's copy takes multi-scale clips (a plain timm Swin rejects them)."""
    name = "swin_tiny_patch4_window7_224"
    plain = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3))
    with pytest.raises((AssertionError, RuntimeError)):
        plain(torch.rand(1, 3, 64, 96))
    torch.manual_seed(0)
    model = SeqFormer(backbone=name, backbone_frozen=(), backbone_indices=(1, 2, 3),
                      backbone_timm_kwargs={"dynamic_img_size": True}, **SMALL_TRANSFORMER).eval()
    for height, width in ((64, 96), (96, 64)):
        with torch.no_grad():
            out = model(torch.rand(1, 2, 3, height, width))
        assert out["pred_boxes"][-1].shape == (1, 2, 4, 4)
        assert out["mask_features"].shape == (1, 2, 8, height // 8, width // 8)
        assert torch.isfinite(out["pred_logits"][-1]).all()


def test_swin_large_forward() -> None:
    """The full Swin-L SeqFormer (pretrained=False, ~3 s on CPU) runs a 2-frame clip at a non-384 size."""
    options = _swinl_model_options()
    model = SeqFormer(backbone=options["backbone"], backbone_frozen=(), backbone_indices=options["backbone_out_indices"],
                      backbone_timm_kwargs=options["backbone_timm_kwargs"], **SMALL_TRANSFORMER).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 2, 3, 96, 128))
    assert out["mask_features"].shape == (1, 2, 8, 12, 16)
