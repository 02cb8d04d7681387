"""Optimizer parameter groups: backbone lr multiplier, lr multipliers by name pattern, no decay on norms.

Every paper's recipe is some combination of three rules, which this module applies in one place:

- the backbone trains at ``lr × backbone_lr_mult`` (DETR family: 1e-5 vs 1e-4 → 0.1);
- parameters whose name matches a pattern get their own multiplier (Deformable DETR: ``sampling_offsets``
  and ``reference_points`` × 0.1); multipliers compose with the backbone one;
- norms, biases and embeddings get no weight decay (1-d parameters, parameters of normalisation layers,
  ``nn.Embedding`` weights and names matching ``no_decay_patterns``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


@dataclass
class OptimizerConfig:
    """Optimizer settings as they appear under ``model.optimizer`` in YAML.

    Attributes:
        name: ``sgd``, ``adam`` or ``adamw``.
        lr: base learning rate.
        weight_decay: applied to every parameter except norms/biases/embeddings.
        momentum: SGD momentum (ignored by Adam/AdamW).
        betas: Adam/AdamW betas.
        nesterov: SGD Nesterov momentum.
        backbone_lr_mult: learning-rate multiplier of parameters matching ``backbone_pattern``.
        backbone_pattern: regular expression (``re.search``) selecting backbone parameter names.
        lr_mults: ``{pattern: multiplier}``; the first pattern (in order) found in a name applies.
        no_decay_patterns: extra name patterns without weight decay (embeddings, position tables).
        fused: torch's fused single-kernel update (CUDA, also CPU) for SGD/Adam/AdamW; ``None`` keeps torch's
            default (the multi-tensor ``foreach`` path on CUDA).
    """

    name: str = "adamw"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    nesterov: bool = False
    backbone_lr_mult: float = 1.0
    backbone_pattern: str = r"(^|\.)backbone\."
    lr_mults: dict[str, float] = field(default_factory=dict)
    no_decay_patterns: list[str] = field(default_factory=lambda: ["pos_embed", "level_embed", "query_embed"])
    fused: bool | None = None


def _no_decay_names(model: nn.Module) -> set[str]:
    names: set[str] = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, (*_NORM_TYPES, nn.Embedding)) or type(module).__name__.lower().endswith("norm"):
            names.update(prefix + param_name for param_name, _ in module.named_parameters(recurse=False))
    return names


def build_param_groups(model: nn.Module, config: OptimizerConfig) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into groups with their own ``lr`` and ``weight_decay``.

    Each group also carries ``name`` (for logging) and ``lr_mult`` (used by the schedulers, which scale
    the base rate). Groups are merged by (multiplier, decay), so there are few of them.

    Returns:
        A list of ``{"params", "lr", "weight_decay", "lr_mult", "name"}`` dicts, in a stable order.
    """
    backbone = re.compile(config.backbone_pattern) if config.backbone_pattern else None
    patterns = [(re.compile(pattern), mult) for pattern, mult in config.lr_mults.items()]
    no_decay_patterns = [re.compile(pattern) for pattern in config.no_decay_patterns]
    no_decay = _no_decay_names(model)

    groups: dict[tuple[float, bool, str], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        mult, tag = 1.0, "base"
        if backbone is not None and backbone.search(name):
            mult, tag = config.backbone_lr_mult, "backbone"
        for pattern, pattern_mult in patterns:
            if pattern.search(name):
                mult, tag = mult * pattern_mult, f"{tag}+{pattern.pattern}"
                break
        decay = not (param.ndim <= 1 or name in no_decay or any(p.search(name) for p in no_decay_patterns))
        key = (mult, decay, tag)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": config.lr * mult,
                "weight_decay": config.weight_decay if decay else 0.0,
                "lr_mult": mult,
                "name": f"{tag}/{'decay' if decay else 'no_decay'}",
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def describe_param_groups(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    """One human-readable line per group: name, #tensors, #elements, lr, weight decay."""
    return [
        f"{g['name']:<40} tensors={len(g['params']):>4} numel={sum(p.numel() for p in g['params']):>11,} "
        f"lr={g['lr']:.3g} wd={g['weight_decay']:.3g}"
        for g in groups
    ]
