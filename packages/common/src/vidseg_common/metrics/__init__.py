"""Evaluation metrics with official-tool parity, as torchmetrics ``Metric`` subclasses.

* :mod:`.vos`: pure J / F / seg2bmap / db_statistics functions (davis2017-evaluation).
* :mod:`.jandf`: :class:`JandF` (DAVIS); :mod:`.ytvos`: :class:`YouTubeVOSScore` (local G proxy).
* :mod:`.vis`: :class:`VideoAP` (youtubevos/cocoapi YTVOSeval).
* :mod:`.vss`: mIoU (torchmetrics) and :mod:`.tc`: :class:`TemporalConsistency` (ETC); :mod:`.flow`: flow backends.

Names are imported lazily so that importing one metric does not import the others' dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "JandF": "jandf",
    "YouTubeVOSScore": "ytvos",
    "VideoAP": "vis",
    "SegmentationIoU": "vss",
    "TemporalConsistency": "tc",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
