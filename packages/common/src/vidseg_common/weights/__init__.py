"""External and own checkpoints: reading any common format safely, renaming keys by declarative tables, and an
all-or-nothing load with an account of every key (``model.init_weights``, ``vidseg weights import``)."""

from vidseg_common.weights.io import Checkpoint, WeightsError, read_checkpoint, save_state_dict
from vidseg_common.weights.load import fit_rules, load_weights
from vidseg_common.weights.rules import IDENTITY, Conversion, WeightRules, convert

__all__ = ["IDENTITY", "Checkpoint", "Conversion", "WeightRules", "WeightsError", "convert", "fit_rules",
           "load_weights", "read_checkpoint", "save_state_dict"]
