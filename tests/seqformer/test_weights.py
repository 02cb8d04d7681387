"""Released SeqFormer / Deformable DETR checkpoints (``vidseg_seqformer.weights``): every key of the committed
manifests (``tests/fixtures/weights/{seqformer_r50,seqformer_r101,deformable_detr_r50}.json``, written by
``benchmarks/reference_manifest.py`` from the released code) maps onto our model at the paper size, and exactly the
documented keys are dropped / fresh, each with its reason; bad files fail naming the file and the keys, and leave the
model untouched. The shape-only checks build the model on the meta device (no initialisation); the load checks build
the real R50 model once (~1.5 s on one CPU thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from weights_support import assert_refused, paper_module, released_keys

from vidseg_common.weights import convert, load_weights
from vidseg_seqformer.module import SeqFormerModule
from vidseg_seqformer.weights import (
    COCO_CLASS_HEAD,
    DEFORMABLE_DETR,
    DUPLICATE_BBOX_EMBED,
    FRESH_CLASS_HEAD,
    SEQFORMER,
    SEQFORMER_COCO,
    UNUSED_ENCODER_BOX_PROJ,
)

REPO = Path(__file__).resolve().parents[2]
R50 = ("experiments/seqformer/ytvis19_r50.yaml",)
RELEASES = {  # manifest → (our configs, rule table)
    "seqformer_r50": (R50, "seqformer"),
    "seqformer_r101": ((*R50, "experiments/seqformer/ytvis19_r101.yaml"), "seqformer"),
    "deformable_detr_r50": (R50, "deformable_detr"),
}
LAYERS = range(6)
PARAM = ("weight", "bias")
BBOX_DUPLICATES = {f"transformer.decoder.bbox_embed.{n}.layers.{i}.{p}" for n in LAYERS for i in range(3) for p in PARAM}
ENCODER_BOX_PROJ = {f"detr.transformer.encoder.layers.{n}.self_attn.output_proj_box.{p}" for n in LAYERS for p in PARAM}
CLASS_HEADS = {f"class_embed.{n}.{p}" for n in LAYERS for p in PARAM}
MHA = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
BOX_SELF_ATTENTION = {f"model.decoder.layers.{n}.self_attn_box.{p}" for n in LAYERS for p in MHA} | {
    f"model.decoder.layers.{n}.norm_self_box.{p}" for n in LAYERS for p in PARAM}
BOX_CROSS = {f"model.decoder.layers.{n}.{m}.{p}" for n in LAYERS for p in PARAM
             for m in ("output_proj_box", "norm_cross_box", "ffn_box.linear1", "ffn_box.linear2", "ffn_box.norm")}
TIME_WEIGHTS = {f"model.decoder.layers.{n}.time_attention_weights.{p}" for n in LAYERS for p in PARAM}
MASK_HEAD = {f"model.mask_branch.{m}.{p}" for m in ("lay1", "lay2", "lay3", "lay4", "fuse") for p in PARAM} | {
    f"model.mask_head.controller.layers.{i}.{p}" for i in range(3) for p in PARAM}
RENAMED = {  # a few of the non-trivial renames: our key ← released SeqFormer key
    "model.backbone.body.layer4.2.bn3.running_var": "detr.backbone.0.body.layer4.2.bn3.running_var",
    "model.level_embed": "detr.transformer.level_embed",
    "model.reference_points.weight": "detr.transformer.reference_points.weight",
    "model.encoder.layers.5.linear2.bias": "detr.transformer.encoder.layers.5.linear2.bias",
    "model.encoder.layers.0.norm2.weight": "detr.transformer.encoder.layers.0.norm2.weight",
    "model.decoder.layers.1.output_proj_box.weight": "detr.transformer.decoder.layers.1.cross_attn.output_proj_box.weight",
    "model.decoder.layers.1.cross_attn.sampling_offsets.bias":
        "detr.transformer.decoder.layers.1.cross_attn.sampling_offsets.bias",
    "model.decoder.layers.2.norm_cross.weight": "detr.transformer.decoder.layers.2.norm1.weight",
    "model.decoder.layers.2.norm_cross_box.bias": "detr.transformer.decoder.layers.2.norm1_box.bias",
    "model.decoder.layers.3.norm_self.weight": "detr.transformer.decoder.layers.3.norm2.weight",
    "model.decoder.layers.3.norm_self_box.weight": "detr.transformer.decoder.layers.3.norm2_box.weight",
    "model.decoder.layers.4.ffn.linear1.weight": "detr.transformer.decoder.layers.4.linear1.weight",
    "model.decoder.layers.4.ffn.norm.bias": "detr.transformer.decoder.layers.4.norm3.bias",
    "model.decoder.layers.5.ffn_box.linear2.weight": "detr.transformer.decoder.layers.5.linear2_box.weight",
    "model.decoder.layers.5.ffn_box.norm.weight": "detr.transformer.decoder.layers.5.norm3_box.weight",
    "model.decoder.layers.5.self_attn_box.in_proj_weight": "detr.transformer.decoder.layers.5.self_attn_box.in_proj_weight",
    "model.decoder.layers.0.time_attention_weights.weight": "detr.transformer.decoder.layers.0.time_attention_weights.weight",
    "model.decoder.bbox_embed.5.layers.2.bias": "detr.bbox_embed.5.layers.2.bias",
    "model.class_embed.3.weight": "detr.class_embed.3.weight",
    "model.input_proj.3.1.bias": "detr.input_proj.3.1.bias",
    "model.mask_head.controller.layers.2.weight": "controller.layers.2.weight",
    "model.mask_branch.fuse.weight": "mask_head.dcn.weight",
    "model.mask_branch.lay2.bias": "mask_head.lay2.bias",
}



def _module(release: str) -> SeqFormerModule:
    return paper_module(SeqFormerModule, RELEASES[release][0])


def _convert(release: str, table: str, manifest: dict[str, list[int]] | None = None) -> tuple[dict, Any]:
    with torch.device("meta"):
        target = _module(release).state_dict()
    manifest = manifest or released_keys(release)
    source = {name: torch.zeros(shape) for name, shape in manifest.items()}
    state, conversion = convert(source, target, SeqFormerModule.weight_rules[table], f"{release}.json")
    assert set(conversion.mapped.values()) | set(conversion.dropped) == set(manifest)  # every released key placed
    assert set(conversion.mapped) | set(conversion.fresh) == set(target)
    assert all(tuple(state[name].shape) == tuple(manifest[key]) for name, key in conversion.mapped.items())
    return target, conversion


def _by_reason(table: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key, reason in table.items():
        out.setdefault(reason, set()).add(key)
    return out


def test_module_declares_the_tables() -> None:
    assert SeqFormerModule.weight_rules == {"seqformer": SEQFORMER, "seqformer_coco": SEQFORMER_COCO,
                                            "deformable_detr": DEFORMABLE_DETR}


@pytest.mark.parametrize("release", ["seqformer_r50", "seqformer_r101"])
def test_seqformer_release_maps_every_model_key(release: str) -> None:
    """The whole model is loaded; dropped: the decoder's second registration of the box MLPs and the encoder's unused
    box projections, nothing else."""
    target, conversion = _convert(release, "seqformer")
    assert conversion.fresh == {}
    assert _by_reason(conversion.dropped) == {DUPLICATE_BBOX_EMBED: {f"detr.{k}" for k in BBOX_DUPLICATES},
                                              UNUSED_ENCODER_BOX_PROJ: ENCODER_BOX_PROJ}
    assert len(conversion.mapped) == len(target) == {"seqformer_r50": 685, "seqformer_r101": 940}[release]
    assert {name: conversion.mapped[name] for name in RENAMED} == RENAMED


def test_deformable_detr_release_leaves_exactly_seqformers_own_parts_fresh() -> None:
    target, conversion = _convert("deformable_detr_r50", "deformable_detr")
    assert _by_reason(conversion.dropped) == {DUPLICATE_BBOX_EMBED: BBOX_DUPLICATES, COCO_CLASS_HEAD: CLASS_HEADS}
    fresh = _by_reason(conversion.fresh)
    reasons = DEFORMABLE_DETR.fresh
    assert fresh == {
        reasons[r"^model\.decoder\.layers\.\d+\.(self_attn_box|norm_self_box)\."]: BOX_SELF_ATTENTION,
        reasons[r"^model\.decoder\.layers\.\d+\.(output_proj_box|norm_cross_box|ffn_box)\."]: BOX_CROSS,
        reasons[r"^model\.decoder\.layers\.\d+\.time_attention_weights\."]: TIME_WEIGHTS,
        reasons[r"^model\.(mask_branch|mask_head)\."]: MASK_HEAD,
        FRESH_CLASS_HEAD: {f"model.{k}" for k in CLASS_HEADS},
    }
    assert {len(keys) for keys in (BOX_SELF_ATTENTION, BOX_CROSS, TIME_WEIGHTS, MASK_HEAD)} == {36, 60, 12, 16}
    assert len(conversion.mapped) == 549 and len(conversion.fresh) == 136 and len(target) == 685
    assert conversion.mapped["model.decoder.layers.2.norm_cross.weight"] == "transformer.decoder.layers.2.norm1.weight"
    assert conversion.mapped["model.decoder.layers.4.ffn.norm.bias"] == "transformer.decoder.layers.4.norm3.bias"
    assert conversion.mapped["model.decoder.bbox_embed.0.layers.2.bias"] == "bbox_embed.0.layers.2.bias"


def test_seqformer_coco_stage1_drops_the_class_heads() -> None:
    """SeqFormer's own COCO weights (``r50_weight.pth``): SeqFormer layout with a COCO class head, which the released
    ``main.py --pretrain_weights`` deletes."""
    manifest = dict(released_keys("seqformer_r50"))
    manifest.update({f"detr.class_embed.{n}.weight": [91, 256] for n in LAYERS})
    manifest.update({f"detr.class_embed.{n}.bias": [91] for n in LAYERS})
    _, conversion = _convert("seqformer_r50", "seqformer_coco", manifest)
    assert _by_reason(conversion.dropped) == {DUPLICATE_BBOX_EMBED: {f"detr.{k}" for k in BBOX_DUPLICATES},
                                              UNUSED_ENCODER_BOX_PROJ: ENCODER_BOX_PROJ,
                                              COCO_CLASS_HEAD: {f"detr.{k}" for k in CLASS_HEADS}}
    assert _by_reason(conversion.fresh) == {FRESH_CLASS_HEAD: {f"model.{k}" for k in CLASS_HEADS}}


# ---------------------------------------------------------------------------------------------------- loading files
@pytest.fixture(scope="module")
def r50() -> SeqFormerModule:
    torch.manual_seed(0)
    return _module("seqformer_r50").eval()


def _save(path: Path, state: dict[str, torch.Tensor]) -> Path:
    torch.save({"model": state}, path)  # the released files' layout (main.py: {"model": ..., "optimizer": ...})
    return path


def _released_state(release: str) -> dict[str, torch.Tensor]:
    """The released keys, each 0.5 (stride-0 views of one value: the file stays small)."""
    half = torch.tensor(0.5)
    return {name: half.expand(shape) for name, shape in released_keys(release).items()}



def test_released_layout_loads(r50: SeqFormerModule, tmp_path: Path) -> None:
    saved = {k: v.clone() for k, v in r50.state_dict().items()}
    state = _released_state("seqformer_r50")
    state["detr.transformer.decoder.layers.1.norm1_box.weight"] = torch.randn(256)
    state["mask_head.dcn.bias"] = torch.randn(256)
    conversion = load_weights(r50, _save(tmp_path / "seqformer_r50.pth", state), SeqFormerModule.weight_rules)
    assert len(conversion.mapped) == 685 and len(conversion.dropped) == 48
    layer = r50.model.decoder.layers[1]
    assert torch.equal(layer.norm_cross_box.weight, state["detr.transformer.decoder.layers.1.norm1_box.weight"])
    assert torch.equal(r50.model.mask_branch.fuse.bias, state["mask_head.dcn.bias"])
    assert bool((r50.model.backbone.body.layer4[2].bn3.running_var == 0.5).all())
    r50.load_state_dict(saved)  # back to the fixture's init for the other tests


def test_deformable_detr_layout_loads_and_keeps_the_fresh_parts(r50: SeqFormerModule, tmp_path: Path) -> None:
    saved = {k: v.clone() for k, v in r50.state_dict().items()}
    conversion = load_weights(r50, _save(tmp_path / "r50_deformable_detr.pth", _released_state("deformable_detr_r50")),
                              SeqFormerModule.weight_rules)
    assert len(conversion.fresh) == 136
    after = r50.state_dict()
    assert all(torch.equal(after[k], saved[k]) for k in conversion.fresh)
    assert all(bool((after[k] == 0.5).all()) for k in conversion.mapped)
    r50.load_state_dict(saved)


def test_another_papers_checkpoint_is_refused(r50: SeqFormerModule, tmp_path: Path) -> None:
    """A VisTR checkpoint (``vistr.`` prefix, dense transformer)."""
    foreign = {
        "vistr.backbone.0.body.conv1.weight": torch.zeros(64, 3, 7, 7),
        "vistr.transformer.encoder.layers.0.self_attn.in_proj_weight": torch.zeros(1152, 384),
        "vistr.query_embed.weight": torch.zeros(360, 384),
    }
    message = assert_refused(r50, _save(tmp_path / "vistr_r50.pth", foreign), "vistr.query_embed.weight",
                     "vistr.backbone.0.body.conv1.weight")
    assert "seqformer" in message and "deformable_detr" in message  # the tables that were tried


def test_shape_mismatch_is_refused(r50: SeqFormerModule, tmp_path: Path) -> None:
    """A SeqFormer trained with 100 queries does not fit ``num_queries: 300``."""
    state = _released_state("seqformer_r50")
    state["detr.query_embed.weight"] = torch.zeros(100, 512)
    message = assert_refused(r50, _save(tmp_path / "seqformer_q100.pth", state), "detr.query_embed.weight")
    assert "(100, 512)" in message and "(300, 512)" in message


def test_missing_keys_are_refused(r50: SeqFormerModule, tmp_path: Path) -> None:
    """A detection-only SeqFormer file without the mask head (``controller``, ``mask_head``)."""
    state = {k: v for k, v in _released_state("seqformer_r50").items() if not k.startswith(("controller.", "mask_head."))}
    assert_refused(r50, _save(tmp_path / "seqformer_nomasks.pth", state), "model.mask_", "model keys missing")


def test_r101_file_does_not_fit_r50(r50: SeqFormerModule, tmp_path: Path) -> None:
    assert_refused(r50, _save(tmp_path / "seqformer_r101.pth", _released_state("seqformer_r101")),
           "source keys with no place in the model", "detr.backbone.0.body.layer3.")
