"""The Lightning + MLflow engine every paper package runs on.

- :mod:`.cli`: ``VidSegCLI`` / :func:`run_cli` (fit, validate, test, predict, benchmark);
- :mod:`.module`: ``VidSegModule``, the base LightningModule (param groups, schedules, BN policy);
- :mod:`.param_groups`, :mod:`.schedulers`, :mod:`.batchnorm`: the pieces it is built from;
- :mod:`.mlflow`: the MLflow logger with a local sqlite default, config upload and run bookkeeping;
- :mod:`.callbacks`: non-finite-loss guard and prediction-overlay logging;
- :mod:`.benchmark`: parameter count, FLOPs and throughput.

Import the submodules directly; this package imports nothing at import time.
"""
