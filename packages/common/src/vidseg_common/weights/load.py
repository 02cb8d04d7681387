"""Loading an external or own checkpoint into a model, all or nothing.

:func:`load_weights` reads the file (:mod:`.io`), tries the model's own key space first (a vidseg checkpoint of
the same model) and then each rule table the model declares (released weights, :mod:`.rules`), and loads the
first that accounts for every key. When none fits, the error names the file and, per table, what did not fit;
the model is left untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from torch import nn

from vidseg_common.weights.io import Checkpoint, WeightsError, read_checkpoint
from vidseg_common.weights.rules import IDENTITY, Conversion, WeightRules, convert

log = logging.getLogger(__name__)


def fit_rules(checkpoint: Checkpoint, model: nn.Module, tables: Sequence[WeightRules]
              ) -> tuple[WeightRules, dict, Conversion]:
    """The first of ``[IDENTITY, *tables]`` that converts ``checkpoint`` onto ``model`` without a problem.

    Raises:
        WeightsError: none fits (the message lists each table's first problem).
    """
    target = model.state_dict()
    failures = []
    for rules in (IDENTITY, *tables):
        try:
            state, conversion = convert(checkpoint.state_dict, target, rules, checkpoint.path)
        except WeightsError as err:
            failures.append(str(err).split(": ", 1)[1])
            continue
        return rules, state, conversion
    raise WeightsError(f"{checkpoint.path}: fits no known layout of {type(model).__name__} — " + " | ".join(failures))


def load_weights(model: nn.Module, path: str | os.PathLike[str], tables: Sequence[WeightRules] | Mapping[str, WeightRules] = ()
                 ) -> Conversion:
    """Load ``path`` into ``model`` (strictly, every key accounted for) and return the account.

    Args:
        model: the target; its ``state_dict()`` defines the key space.
        path: ``.pth`` / ``.ckpt`` / ``.safetensors`` (read with ``weights_only=True``).
        tables: rule tables of the released checkpoints this model can start from.
    """
    checkpoint = read_checkpoint(path)
    rules, state, conversion = fit_rules(checkpoint, model, list(tables.values()) if isinstance(tables, Mapping) else tables)
    model.load_state_dict(state, strict=True)
    log.info("%s: loaded as %s (%s)\n%s", checkpoint.path, rules.name, rules.description, conversion.summary())
    return conversion
