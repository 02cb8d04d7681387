"""Declarative key-renaming tables and the strict conversion of a source state_dict onto a target model.

A :class:`WeightRules` table is data: ordered ``(pattern, replacement)`` regex renames, ``drop`` patterns for source
keys the target has no use for, and ``fresh`` patterns for target keys the source cannot provide — each with the
reason. :func:`convert` accounts for every key: each source key is mapped (to a target key of the same shape) or
dropped with its reason, each target key is loaded or fresh with its reason; anything else is an error, and
nothing is loaded then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vidseg_common.weights.io import WeightsError

BN_COUNTER = "num_batches_tracked"
"""BatchNorm's step counter: dropped where the target's BatchNorm is frozen, fresh where the file has none."""
MAX_LISTED = 8
"""Keys named in one error message before it says how many more there are."""


@dataclass(frozen=True)
class WeightRules:
    """How the keys of a released checkpoint become the keys of one of our models.

    Attributes:
        name: the source, e.g. ``"stcn"`` (``vidseg weights import <name>``).
        description: one line: which release and file this table is for.
        rename: ``(pattern, replacement)`` regexes tried in order on each source key; the first that fully matches
            renames it. A key that none matches (and no ``drop`` names) is an error, unless ``passthrough``.
        drop: ``{pattern: reason}`` for source keys that are not loaded (searched anywhere in the key).
        fresh: ``{pattern: reason}`` for target keys that keep their initialisation.
        passthrough: keys no rename matches keep their name (the :data:`IDENTITY` table of our own checkpoints);
            off for released layouts, so that a file of another layout cannot slip through unrenamed.
    """

    name: str
    description: str
    rename: tuple[tuple[str, str], ...] = ()
    drop: Mapping[str, str] = field(default_factory=dict)
    fresh: Mapping[str, str] = field(default_factory=dict)
    passthrough: bool = False

    def target_key(self, key: str) -> str | None:
        """The name ``key`` takes in the target model (``None``: no rule covers it)."""
        for pattern, replacement in self.rename:
            if re.fullmatch(pattern, key):
                return re.sub(f"^(?:{pattern})$", replacement, key)
        return key if self.passthrough else None


IDENTITY = WeightRules("vidseg", "a checkpoint of this very model (keys and shapes unchanged)", passthrough=True)


@dataclass
class Conversion:
    """What :func:`convert` decided for every key."""

    mapped: dict[str, str] = field(default_factory=dict)
    """target key → source key."""
    dropped: dict[str, str] = field(default_factory=dict)
    """source key → reason."""
    fresh: dict[str, str] = field(default_factory=dict)
    """target key → reason."""

    def summary(self) -> str:
        """Counts and the reasons, one line each (what ``vidseg weights import`` prints)."""
        lines = [f"mapped {len(self.mapped)} tensors, dropped {len(self.dropped)}, fresh {len(self.fresh)}"]
        for title, table in (("dropped", self.dropped), ("fresh", self.fresh)):
            reasons: dict[str, int] = {}
            for reason in table.values():
                reasons[reason] = reasons.get(reason, 0) + 1
            lines += [f"  {title} {count:4d}: {reason}" for reason, count in sorted(reasons.items())]
        return "\n".join(lines)


def _first(pattern_reasons: Mapping[str, str], key: str) -> str | None:
    return next((reason for pattern, reason in pattern_reasons.items() if re.search(pattern, key)), None)


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else ""
    return ", ".join(keys[:MAX_LISTED]) + more


def convert(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], rules: WeightRules,
            path: str | Path = "<weights>") -> tuple[dict[str, torch.Tensor], Conversion]:
    """The full target state_dict with every source tensor placed, and the account of it.

    Args:
        source: the released state_dict.
        target: the model's own ``state_dict()`` (its fresh values fill the ``fresh`` keys).
        rules: the table.
        path: the file, named in errors.

    Raises:
        WeightsError: a source key maps nowhere or twice, a shape differs, or a target key is neither loaded nor
            documented as fresh. Nothing is loaded then.
    """
    out = Conversion()
    unknown, shapes, twice = [], [], []
    for key in sorted(source):
        reason = _first(rules.drop, key)
        if reason is None and key.endswith(BN_COUNTER) and rules.target_key(key) not in target:
            reason = "BatchNorm step counter (the model's BatchNorm is frozen: it keeps none)"
        if reason is not None:
            out.dropped[key] = reason
            continue
        name = rules.target_key(key)
        if name is None:
            unknown.append(f"{key} (no rule)")
        elif name not in target:
            unknown.append(f"{key} → {name}" if name != key else key)
        elif tuple(source[key].shape) != tuple(target[name].shape):
            shapes.append(f"{key} {tuple(source[key].shape)} vs {name} {tuple(target[name].shape)}")
        elif name in out.mapped:
            twice.append(f"{out.mapped[name]} and {key} → {name}")
        else:
            out.mapped[name] = key
    missing = []
    for name in target:
        if name not in out.mapped:
            reason = _first(rules.fresh, name)
            if reason is None and name.endswith(BN_COUNTER):
                reason = "BatchNorm step counter (not in the file; it only counts training steps)"
            if reason is None:
                missing.append(name)
            else:
                out.fresh[name] = reason
    problems = [f"{len(keys)} {problem}: {_listed(keys)}" for problem, keys in (
        ("source keys with no place in the model", unknown), ("shape mismatches", shapes),
        ("target keys filled twice", twice), ("model keys missing from the file", missing)) if keys]
    if problems:
        raise WeightsError(f"{path}: does not fit this model as a {rules.name} checkpoint ({rules.description}): "
                           + "; ".join(problems))
    state = {name: source[out.mapped[name]] if name in out.mapped else value for name, value in target.items()}
    return state, out
