"""``vidseg-<paper> test``: the task module's test loop through the CLI, read back from MLflow (tests only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlflow import MlflowClient


def check_test_subcommand(main: Callable[[list[str]], object], args: Sequence[str], paper: str, tracking_uri: str,
                          metrics: Sequence[str]) -> dict[str, float]:
    """Run ``main(["test", *args])`` and return the metrics of its (one) MLflow run tagged ``stage=test``.

    Checks that each of ``metrics`` (e.g. ``test/jf``) was logged and lies in ``[0, 1]``.
    """
    main(["test", *args])
    client = MlflowClient(tracking_uri)
    runs = [r for r in client.search_runs([client.get_experiment_by_name(paper).experiment_id])
            if r.data.tags.get("stage") == "test"]
    assert len(runs) == 1, f"expected one test run, got {len(runs)}"
    logged = runs[0].data.metrics
    for name in metrics:
        assert name in logged, f"{name} not logged by `test`: {sorted(logged)}"
        assert 0.0 <= logged[name] <= 1.0, (name, logged[name])
    assert not any(k.startswith("val/") for k in logged), sorted(logged)
    return logged
