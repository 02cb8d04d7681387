"""Released STCN weights (``vidseg_spvos.weights``): every key of the committed manifests
(``tests/fixtures/weights/stcn*.json``, written by ``benchmarks/reference_manifest.py`` from hkchengrex/STCN's
``model/network.py``) maps onto our model at the paper size (ResNet-50 / ResNet-18, C_k 64, C_v 512): for
``gate: none`` nothing is dropped and nothing is fresh; for the sparse gates exactly the gate convolutions are fresh
("SpVOS gates are new"). Bad files fail naming the file and the keys, and leave the model untouched.

The shape-only checks build the paper-size model on the meta device (no initialisation, instant). The load checks
use the tiny network of ``conftest.py`` (ResNet-18 query encoder, narrow memory / decoder) with a file in the released
layout built from the manifest's key names (every manifest key whose target the tiny model has, with the tiny
model's shapes): loading real tensors at the paper size would write a 218 MB file per case.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from weights_support import released_keys

from vidseg_common.weights import WeightsError, convert, load_weights
from vidseg_spvos.module import SpVOSModule
from vidseg_spvos.weights import GATES_ARE_NEW, STCN

REPO = Path(__file__).resolve().parents[2]
CONFIG = "experiments/spvos/davis17.yaml"
RELEASES = {"stcn": "none", "stcn_triple": "triple"}
GATE_KEY = re.compile(r"\.gate\.(weight|bias)$")
RENAMED = {  # a few of the non-trivial renames: our key ← released key
    "net.key_encoder.backbone.body.layer1.2.bn3.running_var": "key_encoder.res2.2.bn3.running_var",
    "net.key_encoder.backbone.body.layer3.5.conv2.weight": "key_encoder.layer3.5.conv2.weight",
    "net.key_encoder.backbone.body.bn1.num_batches_tracked": "key_encoder.bn1.num_batches_tracked",
    "net.key_encoder.key_proj.key_proj.weight": "key_proj.key_proj.weight",
    "net.key_encoder.key_comp.bias": "key_comp.bias",
    "net.value_encoder.backbone.body.conv1.weight": "value_encoder.conv1.weight",
    "net.value_encoder.backbone.body.conv1.bias": "value_encoder.conv1.bias",
    "net.value_encoder.backbone.body.layer2.0.downsample.0.bias": "value_encoder.layer2.0.downsample.0.bias",
    "net.value_encoder.fuser.attention.channel_gate.mlp.3.weight": "value_encoder.fuser.attention.ChannelGate.mlp.3.weight",
    "net.value_encoder.fuser.attention.spatial_gate.spatial.bias":
        "value_encoder.fuser.attention.SpatialGate.spatial.conv.bias",
    "net.value_encoder.fuser.block2.conv1.weight": "value_encoder.fuser.block2.conv1.weight",
    "net.decoder.up_8_4.out_conv.conv2.weight": "decoder.up_8_4.out_conv.conv2.weight",
}



def _paper_size(**overrides: Any) -> dict[str, torch.Tensor]:
    """State dict (meta tensors) of the module built from ``davis17.yaml`` + ``overrides``."""
    options = yaml.safe_load((REPO / CONFIG).read_text())["model"]
    options.update(pretrained=False, **overrides)
    with torch.device("meta"):
        module = SpVOSModule(**options)
        module.configure_model()
        return module.state_dict()


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_every_released_key_maps_exactly_the_gates_fresh(release: str) -> None:
    target = _paper_size(gate=RELEASES[release])
    manifest = released_keys(release)
    source = {name: torch.zeros(shape) for name, shape in manifest.items()}
    state, conversion = convert(source, target, SpVOSModule.weight_rules["stcn"], f"{release}.json")
    gates = {name for name in target if GATE_KEY.search(name)}
    assert len(manifest) == len(conversion.mapped) == 405 and set(conversion.mapped.values()) == set(manifest)
    assert conversion.dropped == {}
    assert conversion.fresh == dict.fromkeys(gates, GATES_ARE_NEW)
    assert len(gates) == {"stcn": 0, "stcn_triple": 2 * 45}[release]  # Q: 13 bottlenecks × 3 convs, D: 3 × 2
    assert len(target) == 405 + len(gates)
    assert all(tuple(state[name].shape) == tuple(manifest[key]) for name, key in conversion.mapped.items())
    assert {name: conversion.mapped[name] for name in RENAMED} == RENAMED


@pytest.mark.parametrize("gate", ["static", "residual"])
def test_binary_baselines_start_from_stcn_with_fresh_gates(gate: str) -> None:
    target = _paper_size(gate=gate, sparse_modules=["Q", "D", "M"], strategy="semi-mixed")
    source = {name: torch.zeros(shape) for name, shape in released_keys("stcn").items()}
    _, conversion = convert(source, target, STCN)
    assert len(conversion.mapped) == 405 and conversion.dropped == {}
    assert set(conversion.fresh) == {name for name in target if GATE_KEY.search(name)}
    assert len(conversion.fresh) == 2 * (45 + 12 + 4)  # M: ResNet-18 layer1–3 (6 blocks × 2) + fuser (2 × 2)


# ---------------------------------------------------------------------------------------------- loading files
def _random_like(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.is_floating_point():
        return torch.rand(tensor.shape) + 0.5  # positive: fits running_var too
    return torch.randint(1, 1000, tensor.shape, dtype=tensor.dtype)  # num_batches_tracked


def _released_file(path: Path, module: SpVOSModule, **edit: Any) -> tuple[Path, dict[str, torch.Tensor]]:
    """A ``stcn.pth``-layout file (bare state_dict) for the tiny model: the manifest keys whose targets it has."""
    target = module.state_dict()
    state = {key: _random_like(target[STCN.target_key(key)]) for key in released_keys("stcn") if STCN.target_key(key) in target}
    for key, value in edit.items():
        if value is None:
            del state[key.replace("__", ".")]
        else:
            state[key.replace("__", ".")] = value
    torch.save(state, path)
    return path, state


def test_released_layout_loads(make_module, tmp_path: Path) -> None:
    module = make_module(gate="triple").eval()
    path, state = _released_file(tmp_path / "stcn.pth", module)
    gates_before = {k: v.clone() for k, v in module.state_dict().items() if GATE_KEY.search(k)}
    conversion = load_weights(module, path, SpVOSModule.weight_rules)
    loaded = module.state_dict()
    assert len(conversion.mapped) == len(state) and set(conversion.fresh) == set(gates_before)
    assert all(torch.equal(loaded[STCN.target_key(key)], value) for key, value in state.items())
    assert all(torch.equal(loaded[key], value) for key, value in gates_before.items())


def test_init_weights_option_loads_released_file(make_module, tmp_path: Path) -> None:
    reference = make_module(gate="none")
    path, state = _released_file(tmp_path / "stcn.pth", reference)
    module = make_module(gate="none", init_weights=str(path))
    module.configure_model()
    assert torch.equal(module.net.value_encoder.backbone.body.conv1.bias, state["value_encoder.conv1.bias"])
    assert torch.equal(module.net.key_encoder.backbone.body.layer1[0].bn1.running_mean,
                       state["key_encoder.res2.0.bn1.running_mean"])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param({"value_encoder__conv1__weight": torch.zeros(64, 4, 7, 7)},
                     ["shape mismatches", "value_encoder.conv1.weight (64, 4, 7, 7)"], id="stage0-4-channel-stem"),
        pytest.param({"decoder__pred__weight": None, "value_encoder__layer3__1__bn2__running_var": None},
                     ["model keys missing from the file", "net.decoder.pred.weight",
                      "net.value_encoder.backbone.body.layer3.1.bn2.running_var"], id="missing-keys"),
        pytest.param({"key_encoder__layer4__0__conv1__weight": torch.zeros(512, 1024, 1, 1)},
                     ["no place in the model", "key_encoder.layer4.0.conv1.weight"], id="unknown-key"),
    ],
)
def test_bad_released_file_is_refused_and_model_untouched(make_module, tmp_path: Path, edit: dict,
                                                          expected: list[str]) -> None:
    module = make_module(gate="triple")
    path, _ = _released_file(tmp_path / "stcn.pth", module, **edit)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(WeightsError) as err:
        load_weights(module, path, SpVOSModule.weight_rules)
    assert str(path) in str(err.value) and all(text in str(err.value) for text in expected)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_another_papers_checkpoint_is_refused(make_module, tmp_path: Path) -> None:
    """A VisTR/DETR-style checkpoint (``{"model": state}``: backbone.0.body…, transformer…, query_embed)."""
    other = {"backbone.0.body.conv1.weight": torch.randn(64, 3, 7, 7),
             "backbone.0.body.layer1.0.bn1.running_mean": torch.randn(64),
             "transformer.encoder.layers.0.self_attn.in_proj_weight": torch.randn(768, 256),
             "query_embed.weight": torch.randn(360, 256), "class_embed.weight": torch.randn(42, 256)}
    path = tmp_path / "vistr_r50.pth"
    torch.save({"model": other}, path)
    module = make_module(gate="none")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(WeightsError) as err:
        load_weights(module, path, SpVOSModule.weight_rules)
    message = str(err.value)
    assert str(path) in message and "fits no known layout" in message
    assert "query_embed.weight" in message and "stcn" in message
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
