"""``TaskModule``: what validation, test and predict share across the three tasks.

A task module (:class:`~vidseg_common.tasks.vos.VOSModule`, :class:`~vidseg_common.tasks.vis.VISModule`,
:class:`~vidseg_common.tasks.vss.VSSModule`) owns evaluation: it calls the paper's ``infer(batch)``, updates
its metrics, logs them as ``<stage>/<name>`` (``val/…`` during fit and validate, ``test/…`` during test), writes
predictions under :attr:`~vidseg_common.engine.module.VidSegModule.output_dir` and draws the overlay images. A paper
module implements ``__init__``, ``training_step`` and ``infer``, and may extend evaluation through
:meth:`start_evaluation` / :meth:`end_evaluation`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from vidseg_common.engine.module import VidSegModule


class TaskModule(VidSegModule):
    """Evaluation plumbing shared by the task modules (see the module docstring)."""

    def infer(self, batch: dict[str, Any]) -> Any:
        """The paper's prediction for one evaluation batch (its type is fixed by the task module)."""
        raise NotImplementedError(f"{type(self).__name__} must implement infer(batch)")

    def evaluate(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Predict one evaluation batch and update the metrics; returns the outputs the overlay draws."""
        raise NotImplementedError

    def evaluation_metrics(self) -> dict[str, Tensor]:
        """The metrics of the finished epoch (already synchronised across processes), then reset them."""
        raise NotImplementedError

    def log_losses(self, losses: dict[str, Tensor], batch_size: int) -> Tensor:
        """Log ``losses["loss"]`` as ``train/loss`` (per step and epoch) and every other entry as ``train/<key>``
        (epoch means, e.g. ``train/loss/ce/aux0``); returns the total to optimise."""
        self.log("train/loss", losses["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        for key, value in losses.items():
            if key != "loss":
                self.log(f"train/{key}", value, on_step=False, on_epoch=True, batch_size=batch_size)
        return losses["loss"]

    @property
    def stage(self) -> str:
        """``test`` while testing, else ``val``: the prefix of the logged metric names."""
        return "test" if self._trainer is not None and self.trainer.testing else "val"

    def start_evaluation(self) -> None:
        """Hook at the start of a validation or test epoch (reset per-epoch statistics)."""

    def end_evaluation(self) -> None:
        """Hook at the end of a validation or test epoch, after the task metrics were logged."""

    def _log_evaluation(self) -> None:
        for name, value in self.evaluation_metrics().items():
            self.log(f"{self.stage}/{name}", value, sync_dist=False)
        self.end_evaluation()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self.evaluate(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self.evaluate(batch)

    def on_validation_epoch_start(self) -> None:
        self.start_evaluation()

    def on_test_epoch_start(self) -> None:
        self.start_evaluation()

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation()

    def on_test_epoch_end(self) -> None:
        self._log_evaluation()
