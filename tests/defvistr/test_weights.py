"""Released VisTR checkpoints (``vidseg_defvistr.weights``): every key of the committed manifests
(``tests/fixtures/weights/vistr_*.json``, written by ``benchmarks/reference_manifest.py`` from the released code) maps
onto our ``attention: dense`` model at the paper size, nothing dropped, nothing fresh; bad files fail naming the file
and the keys, and leave the model untouched. The shape-only checks build the model on the meta device (no
initialisation); the load checks build the real R50 model once (~5 s on one CPU thread)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from weights_support import assert_refused, paper_module, released_keys

from vidseg_common.weights import convert, load_weights
from vidseg_defvistr.module import DefVisTRModule
from vidseg_defvistr.weights import VISTR

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ("experiments/defvistr/ytvis19.yaml", "experiments/defvistr/vistr_dense.yaml")
RELEASES = {"vistr_r50": {}, "vistr_r101": {"backbone": "resnet101.tv_in1k"}}
RENAMED = {  # a few of the non-trivial renames: our key ← released key
    "model.backbone.body.layer4.2.bn3.running_var": "vistr.backbone.0.body.layer4.2.bn3.running_var",
    "model.transformer.encoder_layers.5.self_attn.in_proj_weight":
        "vistr.transformer.encoder.layers.5.self_attn.in_proj_weight",
    "model.transformer.encoder_layers.0.norm1.weight": "vistr.transformer.encoder.layers.0.norm1.weight",
    "model.transformer.encoder_layers.0.ffn.norm.weight": "vistr.transformer.encoder.layers.0.norm2.weight",
    "model.transformer.encoder_layers.3.ffn.linear2.bias": "vistr.transformer.encoder.layers.3.linear2.bias",
    "model.transformer.decoder_layers.1.cross_attn.out_proj.weight":
        "vistr.transformer.decoder.layers.1.multihead_attn.out_proj.weight",
    "model.transformer.decoder_layers.1.norm2.bias": "vistr.transformer.decoder.layers.1.norm2.bias",
    "model.transformer.decoder_layers.1.ffn.norm.bias": "vistr.transformer.decoder.layers.1.norm3.bias",
    "model.transformer.decoder_norm.weight": "vistr.transformer.decoder.norm.weight",
    "model.query_embed.weight": "vistr.query_embed.weight",
    "model.mask_head.dcn.weight": "mask_head.dcn.weight",
    "model.bbox_attention.k_linear.bias": "bbox_attention.k_linear.bias",
    "model.insmask_head.layers.9.weight": "insmask_head.9.weight",
}



def _module(release: str) -> DefVisTRModule:
    return paper_module(DefVisTRModule, CONFIGS, **RELEASES[release])


@pytest.fixture(scope="module")
def r50() -> DefVisTRModule:
    torch.manual_seed(0)
    return _module("vistr_r50").eval()


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_every_released_key_maps_nothing_dropped_nothing_fresh(release: str) -> None:
    with torch.device("meta"):
        target = _module(release).state_dict()
    manifest = released_keys(release)
    source = {name: torch.zeros(shape) for name, shape in manifest.items()}
    assert DefVisTRModule.weight_rules == {"vistr": VISTR}
    state, conversion = convert(source, target, VISTR, f"{release}.json")
    assert conversion.dropped == {} and conversion.fresh == {}
    assert len(conversion.mapped) == len(manifest) == len(target) == {"vistr_r50": 503, "vistr_r101": 758}[release]
    assert set(conversion.mapped.values()) == set(manifest)
    assert all(tuple(state[name].shape) == tuple(manifest[key]) for name, key in conversion.mapped.items())
    assert {name: conversion.mapped[name] for name in RENAMED} == RENAMED


def _save(path: Path, state: dict[str, torch.Tensor]) -> Path:
    torch.save({"model": state}, path)  # the released files' layout (main.py: {"model": ..., "optimizer": ...})
    return path



def _released_state(release: str) -> dict[str, torch.Tensor]:
    """The released keys, each 0.5 (stride-0 views of one value: the file stays small)."""
    half = torch.tensor(0.5)
    return {name: half.expand(shape) for name, shape in released_keys(release).items()}


def test_released_layout_loads(r50: DefVisTRModule, tmp_path: Path) -> None:
    """A file with the released keys loads into the right places (the small head tensors only are checked)."""
    saved = {k: v.clone() for k, v in r50.state_dict().items()}
    state = _released_state("vistr_r50")
    state["vistr.transformer.decoder.layers.1.multihead_attn.out_proj.weight"] = torch.randn(384, 384)
    state["insmask_head.9.weight"] = torch.randn(1, 12, 1, 1, 1)
    conversion = load_weights(r50, _save(tmp_path / "vistr_r50.pth", state), DefVisTRModule.weight_rules)
    assert len(conversion.mapped) == 503
    layers = r50.model.transformer.decoder_layers
    released = state["vistr.transformer.decoder.layers.1.multihead_attn.out_proj.weight"]
    assert torch.equal(layers[1].cross_attn.out_proj.weight, released)
    assert torch.equal(r50.model.insmask_head.layers[9].weight, state["insmask_head.9.weight"])
    assert bool((r50.model.backbone.body.layer4[2].bn3.running_var == 0.5).all())
    r50.load_state_dict(saved)  # back to the fixture's init for the other tests


def test_another_papers_checkpoint_is_refused(r50: DefVisTRModule, tmp_path: Path) -> None:
    """A Deformable-DETR-layout checkpoint (SeqFormer's keys: no ``vistr.`` prefix, deformable attention)."""
    foreign = {
        "backbone.0.body.conv1.weight": torch.zeros(64, 3, 7, 7),
        "transformer.encoder.layers.0.self_attn.sampling_offsets.weight": torch.zeros(256, 256),
        "transformer.level_embed": torch.zeros(4, 256),
        "input_proj.0.0.weight": torch.zeros(256, 512, 1, 1),
    }
    message = assert_refused(r50, _save(tmp_path / "seqformer_r50.pth", foreign), "transformer.level_embed",
                     "backbone.0.body.conv1.weight")
    assert "vistr" in message  # the table that was tried


def test_shape_mismatch_is_refused(r50: DefVisTRModule, tmp_path: Path) -> None:
    """A VisTR trained for another clip length (query_embed of 18 × 10 queries) does not fit T = 36."""
    state = _released_state("vistr_r50")
    state["vistr.query_embed.weight"] = torch.zeros(180, 384)
    message = assert_refused(r50, _save(tmp_path / "vistr_t18.pth", state), "vistr.query_embed.weight")
    assert "(180, 384)" in message and "(360, 384)" in message


def test_missing_keys_are_refused(r50: DefVisTRModule, tmp_path: Path) -> None:
    """A detection-only VisTR (no ``--masks``: no mask head) misses the mask-head keys."""
    state = {k: v for k, v in _released_state("vistr_r50").items()
             if not k.startswith(("mask_head.", "bbox_attention.", "insmask_head."))}
    assert_refused(r50, _save(tmp_path / "vistr_nomasks.pth", state), "model.mask_head.", "model keys missing")


def test_r101_file_does_not_fit_r50(r50: DefVisTRModule, tmp_path: Path) -> None:
    assert_refused(r50, _save(tmp_path / "vistr_r101.pth", _released_state("vistr_r101")),
           "source keys with no place in the model", "vistr.backbone.0.body.layer3.1")
