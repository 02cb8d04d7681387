"""The ``vidseg compare`` figure: main metric against FLOPs and against throughput, one point per run.

matplotlib (a dependency of mlflow, so always installed with vidseg-common) draws it with the ``Agg``
backend; the PNG is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from vidseg_common.io import atomic_path


@dataclass(frozen=True)
class PlotPoint:
    """One run in the plot: ``label`` (paper / config), ``metric`` name, its ``score``, GFLOPs and frames/s."""

    label: str
    metric: str
    score: float
    gflops: float | None
    fps: float | None


def plot_comparison(points: Sequence[PlotPoint], path: str | os.PathLike[str], title: str = "vidseg compare",
                    dpi: int = 120) -> None:
    """Two scatter panels (score vs GFLOPs, score vs fps; log x axes), one marker per metric name.

    Runs without a FLOP count (or without fps) are left out of that panel and said so in its caption.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    figure = Figure(figsize=(11, 4.5), dpi=dpi)
    markers = dict(zip(sorted({p.metric for p in points}), "osD^v<>ph*"))
    for index, (key, xlabel) in enumerate((("gflops", "GFLOPs per clip (log)"), ("fps", "frames / s (log)"))):
        axis = figure.add_subplot(1, 2, index + 1)
        shown = [p for p in points if getattr(p, key) is not None and getattr(p, key) > 0]
        for metric, marker in markers.items():
            group = [p for p in shown if p.metric == metric]
            if group:
                axis.scatter([getattr(p, key) for p in group], [p.score for p in group], marker=marker, s=50, label=metric)
        for point in shown:
            axis.annotate(point.label, (getattr(point, key), point.score), textcoords="offset points", xytext=(4, 4),
                          fontsize=7)
        if shown:
            axis.set_xscale("log")
            axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            axis.xaxis.set_minor_formatter(NullFormatter())
            axis.legend(fontsize=8, loc="best")
        missing = len(points) - len(shown)
        axis.set_xlabel(xlabel + (f" — {missing} run(s) without it not shown" if missing else ""))
        axis.set_ylabel("main metric (J&F / AP / mIoU)")
        axis.grid(True, alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
