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
