"""``VidSegCLI``: the LightningCLI every paper package exposes (fit / validate / test / predict / benchmark).

A paper package's ``cli.py`` is three lines::

    from vidseg_common.engine.cli import run_cli
    from vidseg_sstvos.module import SSTVOSModule

    def main(args: list[str] | None = None) -> None:
        run_cli(SSTVOSModule, paper="sstvos", args=args)

What it adds to LightningCLI:

- MLflow as the default logger (local sqlite store, resolved config uploaded as ``config.yaml``,
  tags paper / dataset / git commit / configs, checkpoint paths), see :mod:`.mlflow`;
- ``ModelCheckpoint`` (best, under ``checkpoint.*``) and :class:`.checkpoint.LastCheckpoint` (the latest
  state, under ``last_checkpoint.*``), both in ``<default_root_dir>/checkpoints`` so that
  ``--ckpt_path last`` finds it again and resumes the same MLflow run; the overlay callback under ``overlay.*``; the non-finite-loss guard; a Rich progress bar
  (off when ``CI`` is set);
- a ``benchmark`` subcommand: parameter count, FLOPs and throughput at a given input size;
- user errors (:class:`~vidseg_common.errors.VidSegError`) printed as one line, exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from lightning_utilities.core.imports import RequirementCache

from vidseg_common.engine.benchmark import BenchmarkResult, benchmark_module
from vidseg_common.engine.callbacks import NonFiniteLossGuard, PredictionOverlayCallback
from vidseg_common.engine.checkpoint import LastCheckpoint
from vidseg_common.engine.mlflow import (
    MLflowSaveConfigCallback,
    RunInfoCallback,
    VidSegMLFlowLogger,
    mlflow_loggers,
    read_run_sidecar,
)
from vidseg_common.engine.paths import project_root
from vidseg_common.errors import ConfigError, VidSegError

SEED_DEFAULT = 0


class VidSegTrainer(Trainer):
    """``Trainer`` with a ``benchmark`` entry point (what the ``benchmark`` subcommand calls)."""

    def benchmark(
        self,
        model: LightningModule,
        datamodule: LightningDataModule | None = None,
        batch_size: int = 1,
        num_frames: int = 5,
        height: int = 480,
        width: int = 864,
        warmup: int = 3,
        iters: int = 10,
    ) -> BenchmarkResult:
        """Measure parameters, FLOPs and throughput (clips/s, frames/s) on the trainer's device.

        Args:
            model: the LightningModule (must provide ``example_inputs`` / ``benchmark_forward``).
            datamodule: unused; accepted so the same config files work for every subcommand.
            batch_size: clips per forward pass.
            num_frames: frames per clip (T).
            height: input height in pixels.
            width: input width in pixels.
            warmup: untimed calls before timing.
            iters: timed calls.
        """
        if self.world_size > 1:
            raise ConfigError("benchmark runs on one device: use --trainer.devices 1")
        if not hasattr(model, "example_inputs"):
            raise ConfigError(f"{type(model).__name__} does not define example_inputs(); derive it from VidSegModule")
        if hasattr(model, "configure_model"):
            model.configure_model()
        model.to(self.strategy.root_device)
        result = benchmark_module(
            model, batch_size=batch_size, num_frames=num_frames, height=height, width=width, warmup=warmup, iters=iters
        )
        rank_zero_info(format_benchmark(type(model).__name__, result))
        for logger in mlflow_loggers(self):
            logger.log_metrics(result.as_metrics(), step=0)
            logger.experiment.set_tag(logger.run_id, "stage", "benchmark")
            logger.experiment.log_dict(logger.run_id, result.as_dict(), "benchmark.json")
            logger.finalize("success")
        return result


def format_benchmark(name: str, result: BenchmarkResult) -> str:
    """The benchmark as a small aligned table (plain text, so it reads the same in logs)."""
    rows = [
        ("model", name),
        ("input", f"B={result.batch_size} T={result.num_frames} {result.height}×{result.width} on {result.device}"),
        ("params", f"{result.params / 1e6:.3f} M ({result.trainable_params / 1e6:.3f} M trainable)"),
        ("FLOPs / clip", f"{result.flops / result.batch_size / 1e9:.3f} G"),
        ("throughput", f"{result.clips_per_s:.3f} clips/s, {result.frames_per_s:.2f} frames/s"),
        ("latency", f"{result.ms_per_clip:.1f} ms/clip"),
    ]
    if result.uncounted_ops:
        rows.append(("no FLOP formula", ", ".join(result.uncounted_ops)))
    return "\n".join(f"{key:<16}{value}" for key, value in rows)


class VidSegCLI(LightningCLI):
    """LightningCLI with the vidseg defaults (see the module docstring)."""

    def __init__(
        self,
        model_class: type[LightningModule] | None = None,
        datamodule_class: type[LightningDataModule] | None = None,
        *,
        paper: str,
        args: ArgsType = None,
        run: bool = True,
        **kwargs: Any,
    ) -> None:
        self.paper = paper
        self._cli_args = args
        in_ci = bool(os.environ.get("CI"))
        trainer_defaults = {
            "default_root_dir": str(project_root() / "outputs" / paper),
            "enable_progress_bar": not in_ci,
            "logger": {"class_path": f"{VidSegMLFlowLogger.__module__}.{VidSegMLFlowLogger.__qualname__}",
                       "init_args": {"experiment_name": paper}},
            **kwargs.pop("trainer_defaults", {}),
        }
        super().__init__(
            model_class,
            datamodule_class,
            save_config_callback=MLflowSaveConfigCallback,
            save_config_kwargs={"save_to_log_dir": False, "overwrite": True},
            trainer_class=VidSegTrainer,
            trainer_defaults=trainer_defaults,
            seed_everything_default=SEED_DEFAULT,
            auto_configure_optimizers=False,
            subclass_mode_data=True,
            args=args,
            run=run,
            **kwargs,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "benchmark": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "checkpoint.save_last": False,
                "checkpoint.save_top_k": 1,
                "checkpoint.filename": "epoch{epoch:03d}-step{step:06d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(PredictionOverlayCallback, "overlay")

    def _parse_ckpt_path(self) -> None:
        """Checkpoint hyperparameters become *defaults*: config files and command-line flags still win.

        LightningCLI 2.6 applies them on top of the parsed config, which silently discards options such
        as ``--model.output_dir`` given together with ``--ckpt_path``. Here they are set as defaults of
        the ``model.*`` keys and the command line is parsed again (checkpoints load with ``weights_only``).
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        hparams = torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters", {})
        parser = self._subcommand_parsers[subcommand]
        defaults = _known_defaults(parser, {k: v for k, v in hparams.items() if not k.startswith("_")}, "model")
        if defaults:
            parser.set_defaults(defaults)
            self.parse_arguments(self.parser, self._cli_args)

    def _subconfig(self) -> Any:
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        config = self._subconfig()
        root = Path(config.trainer.default_root_dir or os.getcwd())
        if config.checkpoint.dirpath is None:
            config.checkpoint.dirpath = str(root / "checkpoints")
        if config.last_checkpoint.dirpath is None:
            config.last_checkpoint.dirpath = config.checkpoint.dirpath

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        user_callbacks: list[Callback] = list(trainer_config.get("callbacks") or [])
        config_files = [str(path) for path in (self._subconfig().get("config") or [])]
        ours: list[Callback] = [NonFiniteLossGuard(), RunInfoCallback(self.paper, config_files)]
        wants_bar = trainer_config.get("enable_progress_bar", True) is not False
        if wants_bar and not any(isinstance(cb, ProgressBar) for cb in user_callbacks) and RequirementCache("rich"):
            ours.append(RichProgressBar())
        return super().instantiate_trainer(**kwargs, callbacks=[*user_callbacks, *ours])

    def after_instantiate_classes(self) -> None:
        if self.subcommand != "fit" or not self._subconfig().get("ckpt_path"):
            return
        ckpt_path = str(self._subconfig().ckpt_path)
        ckpt_dir = self._subconfig().last_checkpoint.dirpath if ckpt_path in ("last", "best") else str(Path(ckpt_path).parent)
        sidecar = read_run_sidecar(ckpt_dir)
        for logger in self.trainer.loggers:
            if (
                isinstance(logger, VidSegMLFlowLogger)
                and sidecar is not None
                and logger._run_id is None
                and sidecar.get("tracking_uri") == logger.tracking_uri
            ):
                logger.resume_run(sidecar["run_id"])
                rank_zero_info(f"resuming MLflow run {sidecar['run_id']}")


def _known_defaults(parser: LightningArgumentParser, values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"model.key": value}`` for the saved values the parser knows, descending into nested groups.

    A key the current signature no longer has is skipped (an old checkpoint stays loadable).
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        try:
            parser.get_default(name)
        except KeyError:
            if isinstance(value, dict):
                out.update(_known_defaults(parser, value, name))
            continue
        out[name] = value
    return out


def run_cli(
    model_class: type[LightningModule],
    *,
    paper: str,
    datamodule_class: type[LightningDataModule] | None = None,
    args: ArgsType = None,
    **kwargs: Any,
) -> VidSegCLI | None:
    """Run the CLI of one paper; user errors become one line on stderr and exit code 2."""
    try:
        return VidSegCLI(model_class, datamodule_class, paper=paper, args=args, **kwargs)
    except Exception as err:
        user_error = find_user_error(err)
        if user_error is None:
            raise
        print(f"vidseg-{paper}: error: {user_error}", file=sys.stderr)
        raise SystemExit(2) from None


def find_user_error(err: BaseException) -> VidSegError | None:
    """The :class:`VidSegError` behind ``err`` (jsonargparse wraps errors raised while instantiating)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, VidSegError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
