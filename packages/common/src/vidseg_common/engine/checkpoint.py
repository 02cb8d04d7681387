"""``LastCheckpoint``: keeps ``last.ckpt`` equal to the latest training state.

Lightning 2.6's ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only when a top-k
checkpoint is written in the same step, so with a monitored metric that stops improving ``last.ckpt``
falls behind and ``--ckpt_path last`` would silently repeat training. This callback owns ``last.ckpt``
on its own schedule (every epoch and, optionally, every N optimizer steps, so a killed job loses at
most N steps), while ``ModelCheckpoint`` keeps the best ones. Writes go through Lightning's fsspec
transaction (temp file + move), so a kill mid-write leaves the previous file intact.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """Write ``<dirpath>/last.ckpt`` every ``every_n_train_steps`` steps (0: per epoch) and at the end.

    Args:
        dirpath: checkpoint folder (the CLI defaults it to ``<default_root_dir>/checkpoints``).
        every_n_train_steps: also save every N optimizer steps (0 disables step-based saving).
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int = 0) -> None:
        if every_n_train_steps < 0:
            raise ValueError("last_checkpoint.every_n_train_steps must be ≥ 0")
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_train_steps=every_n_train_steps or None,
            enable_version_counter=False,
        )

    @property
    def last_path(self) -> str:
        return self.best_model_path

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.fast_dev_run and self._last_global_step_saved != trainer.global_step:
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))
