"""Task-level LightningModules: what VOS, VIS and VSS papers share (evaluation, prediction, overlays, metrics).

A paper module subclasses one of them, builds its networks in ``__init__``, implements ``training_step`` and
``infer(batch)`` (ids for VOS, :class:`VideoInstances` for VIS, logits for VSS). See ``docs/architecture.md``.
"""

from vidseg_common.tasks.base import TaskModule
from vidseg_common.tasks.instances import VideoInstances
from vidseg_common.tasks.vis import VISModule
from vidseg_common.tasks.vos import VOSModule
from vidseg_common.tasks.vss import VSSModule

__all__ = ["TaskModule", "VISModule", "VOSModule", "VSSModule", "VideoInstances"]
