"""``vidseg weights``: convert a released checkpoint to a paper model's key space, with an account of every key.

    vidseg weights import spvos stcn.pth --config experiments/spvos/davis17.yaml --out spvos_stcn.safetensors
    vidseg weights list

The paper models are found through the ``vidseg.models`` entry-point group (``<paper> = "pkg.module:Class"``,
declared by each paper package); their ``weight_rules`` say which releases they can start from. ``import`` builds
the model from the ``model:`` sections of the given YAMLs (later files win), loads the source all-or-nothing,
prints the mapped / dropped / fresh summary and writes the converted state_dict atomically (``.safetensors`` or
``.pth``), which ``--model.init_weights`` then loads as the model's own.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
from pathlib import Path
from typing import Any

from vidseg_common.errors import ConfigError

HELP = "convert released weights to a paper model (import) or list what each model can import (list)"
ENTRY_POINT_GROUP = "vidseg.models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="convert SRC for PAPER's model and write it to --out")
    imp.add_argument("paper", help="paper package name (see `vidseg weights list`)")
    imp.add_argument("source", type=Path, help="released checkpoint (.pth / .ckpt / .safetensors)")
    imp.add_argument("--out", type=Path, required=True, help="converted state_dict (.safetensors or .pth)")
    imp.add_argument("--config", "-c", type=Path, action="append", default=[],
                     help="experiment YAML whose model: section builds the target (repeatable; later files win)")
    sub.add_parser("list", help="paper models and the releases their rules convert")


def model_classes() -> dict[str, Any]:
    """``{paper: LightningModule class}`` of the installed paper packages."""
    classes = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        classes[entry.name] = entry.load()
    return classes


def build_model(cls: Any, configs: list[Path]) -> Any:
    """``cls`` built from the merged ``model:`` sections of ``configs`` (safe YAML), BN policy applied."""
    import yaml

    options: dict[str, Any] = {}
    for path in configs:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        data = yaml.safe_load(path.read_text()) or {}
        model = data.get("model") or {}
        if not isinstance(model, dict):
            raise ConfigError(f"{path}: model: must be a mapping, got {type(model).__name__}")
        options.update(model)
    options.pop("init_weights", None)
    options.update({key: False for key in ("pretrained",) if key in options})  # every tensor is replaced anyway
    try:
        module = cls(**options)
    except TypeError as err:
        raise ConfigError(f"model options of {', '.join(map(str, configs)) or 'the defaults'}: {err}") from err
    module.configure_model()
    return module


def run(args: argparse.Namespace) -> int:
    classes = model_classes()
    if args.action == "list":
        for paper, cls in sorted(classes.items()):
            rules = getattr(cls, "weight_rules", {}) or {}
            print(f"{paper:10s} {cls.__name__}: " + ("; ".join(f"{r.name} ({r.description})" for r in rules.values())
                                                     or "its own checkpoints only"))
        return 0
    if args.paper not in classes:
        raise ConfigError(f"unknown paper {args.paper!r}; installed: {', '.join(sorted(classes)) or 'none'}")
    from vidseg_common.weights import load_weights, save_state_dict

    module = build_model(classes[args.paper], args.config)
    conversion = load_weights(module, args.source, classes[args.paper].weight_rules)
    save_state_dict(module.state_dict(), args.out)
    print(f"{args.source} → {args.out} ({args.paper})")
    print(conversion.summary())
    return 0
