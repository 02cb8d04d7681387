"""Score a YouTube-VOS-layout results folder against a split with full ground truth (local proxy).

GT: ``<root>/Annotations/<video>/<frame>.png`` (the annotated sparse frames) and ``<root>/meta.json``
(``{"videos": {video: {"objects": {id: {"category": name, ...}}}}}``); results:
``<results>/<video>/<frame>.png`` for exactly the annotated frames. Categories listed in an
``unseen`` set are scored as unseen. See :mod:`vidseg_common.metrics.ytvos` for the protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidseg_common.data.formats.png import read_index_png
from vidseg_common.errors import DataError
from vidseg_common.metrics.davis_folder import load_prediction


def read_meta(root: str | Path) -> dict[str, dict[int, str]]:
    """video → {object id → category name} from ``meta.json``."""
    path = Path(root) / "meta.json"
    try:
        videos = json.loads(path.read_text())["videos"]
        return {v: {int(k): str(o.get("category", "")) for k, o in info["objects"].items()} for v, info in videos.items()}
    except FileNotFoundError as err:
        raise DataError(f"{path}: meta.json not found") from err
    except (KeyError, TypeError, AttributeError, ValueError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a YouTube-VOS meta.json ({err})") from err


def score_folder_video(job: tuple[str, str, str, dict[int, bool]]) -> tuple[str, dict[int, Any]]:
    """Per object of one video: (frames, J, F, seen) as numpy arrays."""
    from vidseg_common.metrics.ytvos import score_video_after_first_appearance

    gt_root, results, video, seen = job
    frames = sorted((Path(gt_root) / "Annotations" / video).glob("*.png"))
    if not frames:
        raise DataError(f"{Path(gt_root) / 'Annotations' / video}: no annotation PNGs")
    gt = np.stack([read_index_png(p) for p in frames])
    pred = load_prediction(results, video, [p.stem for p in frames], gt.shape[1:])
    scores = score_video_after_first_appearance(torch.from_numpy(gt), torch.from_numpy(pred), None, video)
    out = {}
    for obj, (idx, j, f) in scores.items():
        if obj not in seen:
            raise DataError(f"{Path(gt_root) / 'meta.json'}: video {video!r} has no entry for object {obj}")
        out[obj] = (idx.numpy(), j.numpy(), f.numpy(), seen[obj])
    return video, out
