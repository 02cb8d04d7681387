"""MLflow as the default logger, with a local sqlite store, config upload and run bookkeeping.

Why not Lightning's ``MLFlowLogger`` as is (docs/reference/ecosystem.md §3): its default tracking URI is read from the
environment at *import* time and falls back to the ``file:`` store, which mlflow ≥ 3.13 refuses; and
its ``SaveConfigCallback`` needs a log dir that an sqlite-backed logger does not have. Here the URI is
resolved when the logger is built: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project>/mlflow.db``
with artifacts under ``<project>/mlruns``.
"""

from __future__ import annotations

import json
import logging
import os
from argparse import Namespace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only, rank_zero_warn

from vidseg_common.engine.paths import git_commit, project_root
from vidseg_common.io import atomic_write_text

log = logging.getLogger(__name__)

RUN_SIDECAR = "mlflow_run.json"
"""File next to the checkpoints that remembers which MLflow run they belong to (for resuming it)."""


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else an absolute sqlite URI at the project root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


SQLITE_PREFIX = "sqlite:///"


def sqlite_artifact_root(uri: str, experiment_name: str) -> Path:
    """``<folder of the sqlite file>/mlruns/<experiment_name>`` for ``sqlite:///<path>`` (relative paths from the cwd)."""
    return Path(uri[len(SQLITE_PREFIX):]).expanduser().resolve().parent / "mlruns" / experiment_name


class VidSegMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` whose defaults work with mlflow 3 and whose runs can be resumed.

    Args:
        experiment_name: MLflow experiment (one per paper by default).
        run_name: display name of the run.
        tracking_uri: ``None`` → :func:`default_tracking_uri`, resolved now (not at import time).
        tags: extra run tags.
        log_model: upload checkpoints as artifacts (``False`` records only their paths as tags).
        artifact_location: where a *new* experiment stores artifacts; ``None`` with an sqlite store →
            ``<folder of the .db>/mlruns/<experiment_name>`` (the default store: ``<project>/mlruns/...``),
            never mlflow's own default ``./mlruns`` of the current directory.
        run_id: attach to an existing run instead of creating one.
    """

    def __init__(
        self,
        experiment_name: str = "vidseg",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, Any] | None = None,
        log_model: Literal[True, False, "all"] = False,
        artifact_location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        uri = tracking_uri or default_tracking_uri()
        if artifact_location is None and uri.startswith(SQLITE_PREFIX):
            artifact_location = sqlite_artifact_root(uri, experiment_name).as_uri()
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name,
            tracking_uri=uri,
            tags=tags,
            log_model=log_model,
            artifact_location=artifact_location,
            run_id=run_id,
        )
        self._resumed = run_id is not None

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri

    def resume_run(self, run_id: str) -> None:
        """Attach to ``run_id`` instead of creating a new run; only before the run is first used."""
        if self._initialized:
            raise RuntimeError("resume_run() must be called before the MLflow run is created")
        self._run_id = run_id
        self._resumed = True

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        """Log params; on a resumed run, skip those already there (MLflow params are immutable).

        A value that changed on resume is recorded as tag ``changed_on_resume/<name>`` instead of failing.
        """
        if not self._resumed:
            super().log_hyperparams(params)
            return
        from lightning.fabric.utilities.logger import _convert_params, _flatten_dict

        existing = self.experiment.get_run(self.run_id).data.params
        fresh: dict[str, Any] = {}
        for key, value in _flatten_dict(_convert_params(params)).items():
            text = str(value)[:250]
            if key not in existing:
                fresh[key] = value
            elif existing[key] != text:
                self.experiment.set_tag(self.run_id, f"changed_on_resume/{key}", text)
                rank_zero_warn(f"hyperparameter {key!r} changed on resume: {existing[key]!r} → {text!r} (kept as a tag)")
        if fresh:
            super().log_hyperparams(fresh)

    @rank_zero_only
    def log_image(self, image: np.ndarray, key: str, step: int) -> None:
        """Log an ``(H, W, 3) uint8`` image as a stepped MLflow image (scrubbable in the UI)."""
        self.experiment.log_image(self.run_id, image, key=key, step=step)

    @rank_zero_only
    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.experiment.set_tag(self.run_id, key, str(value)[:5000])


def mlflow_loggers(trainer: Trainer) -> list[MLFlowLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)]


class MLflowSaveConfigCallback(SaveConfigCallback):
    """Uploads the resolved config as ``config.yaml`` to every MLflow run (rank 0 only).

    Lightning's own callback needs ``trainer.log_dir``, which is ``None`` with an sqlite store
    (docs/reference/ecosystem.md §2.1); for other loggers that have a log dir it still writes the file there.
    """

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        loggers = mlflow_loggers(trainer)
        for logger in loggers:
            logger.experiment.log_text(logger.run_id, text, self.config_filename)
        if not loggers and trainer.log_dir is not None:
            atomic_write_text(Path(trainer.log_dir) / self.config_filename, text)


class RunInfoCallback(Callback):
    """Run bookkeeping on rank 0: tags (paper, dataset, git commit, configs), model size, checkpoint paths.

    It also writes :data:`RUN_SIDECAR` next to the checkpoints so that ``--ckpt_path last`` resumes the
    same MLflow run instead of opening a new one.
    """

    def __init__(self, paper: str, config_files: list[str] | None = None) -> None:
        self.paper = paper
        self.config_files = list(config_files or [])

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        dataset = getattr(datamodule, "dataset_name", None) or (type(datamodule).__name__ if datamodule else "none")
        params = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        for logger in mlflow_loggers(trainer):
            tags = {
                "paper": self.paper,
                "dataset": dataset,
                "git_commit": git_commit(),
                "stage": getattr(stage, "value", stage),  # TrainerFn → "fit" / "validate" / ...
                "model_class": type(pl_module).__qualname__,
                "configs": ",".join(self.config_files) or "none",
            }
            for key, value in tags.items():
                logger.experiment.set_tag(logger.run_id, key, value)
            logger.experiment.log_metric(logger.run_id, "model/params", params)
            logger.experiment.log_metric(logger.run_id, "model/trainable_params", trainable)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        ckpt_dir = self._checkpoint_dir(trainer)
        if not trainer.is_global_zero or ckpt_dir is None:
            return
        for logger in mlflow_loggers(trainer):
            sidecar = {"run_id": logger.run_id, "tracking_uri": logger._tracking_uri}
            atomic_write_text(Path(ckpt_dir) / RUN_SIDECAR, json.dumps(sidecar))

    @staticmethod
    def _checkpoint_dir(trainer: Trainer) -> str | None:
        callback = trainer.checkpoint_callback
        return callback.dirpath if isinstance(callback, ModelCheckpoint) else None

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_checkpoint_paths(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._log_checkpoint_paths(trainer)

    @staticmethod
    def _log_checkpoint_paths(trainer: Trainer) -> None:
        from vidseg_common.engine.checkpoint import LastCheckpoint

        if not trainer.is_global_zero:
            return
        for callback in trainer.checkpoint_callbacks:
            name = "checkpoint/last" if isinstance(callback, LastCheckpoint) else "checkpoint/best"
            if not callback.best_model_path:
                continue
            for logger in mlflow_loggers(trainer):
                logger.experiment.set_tag(logger.run_id, name, str(Path(callback.best_model_path).resolve()))


def read_run_sidecar(checkpoint_dir: str | os.PathLike[str]) -> dict[str, str] | None:
    """The ``{"run_id", "tracking_uri"}`` recorded next to checkpoints, or ``None``."""
    path = Path(checkpoint_dir) / RUN_SIDECAR
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "run_id" in data else None
