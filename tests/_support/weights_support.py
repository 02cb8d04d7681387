"""Shared helpers of the papers' released-weights tests: committed key manifests and paper-size models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "tests" / "fixtures" / "weights"


def released_keys(release: str) -> dict[str, list[int]]:
    """Names and shapes of a released state_dict (``tests/fixtures/weights/<release>.json``)."""
    return json.loads((MANIFESTS / f"{release}.json").read_text())["keys"]


def paper_module(cls: type, configs: Sequence[str], **overrides: Any) -> Any:
    """``cls`` built from the ``model:`` sections of ``configs`` (repository-relative YAMLs, later ones win) and
    ``overrides``, without backbone downloads, with its BN policy applied (frozen BN as the released backbones)."""
    options: dict[str, Any] = {}
    for config in configs:
        options.update(yaml.safe_load((REPO / config).read_text())["model"])
    options.update(pretrained=False, **overrides)
    module = cls(**options)
    module.configure_model()
    return module


def assert_refused(module: Any, path: Path, *names: str) -> str:
    """``load_weights`` of ``path`` raises a ``WeightsError`` naming the file and ``names``, and leaves ``module``
    untouched; returns the message."""
    import pytest
    import torch

    from vidseg_common.weights import WeightsError, load_weights

    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(WeightsError) as err:
        load_weights(module, path, type(module).weight_rules)
    message = str(err.value)
    assert str(path) in message
    for name in names:
        assert name in message
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing loaded
    return message
