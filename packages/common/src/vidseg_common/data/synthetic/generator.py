"""Render synthetic videos and write them in the real dataset layouts (one worker process per video).

Every video is rendered from its own generator ``default_rng([seed, split, index, attempt])``, so the
output does not depend on the number of worker processes. Per-video files are written by
:mod:`~vidseg_common.data.synthetic.layouts`; the split indices (ImageSets, meta.json, YouTube-VIS
JSON) are written here once all videos are done, then ``synthetic.json`` records the options.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from vidseg_common.data.formats.davis import write_davis_split
from vidseg_common.data.formats.youtube_vis import build_youtube_vis_json, write_json
from vidseg_common.data.formats.youtube_vos import write_youtube_vos_meta
from vidseg_common.data.synthetic import layouts
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.scenes import category_name
from vidseg_common.io import atomic_write_text

SPLITS: dict[str, tuple[str, str]] = {
    "davis": ("train", "val"),
    "youtube_vos": ("train", "valid"),
    "youtube_vis": ("train", "valid"),
    "cityscapes": ("train", "val"),
    "camvid": ("train", "val"),
}


def _job(args: tuple[SyntheticConfig, str, int, int, str]) -> dict[str, Any]:
    cfg, root, split_index, index, split = args
    return layouts.WRITERS[cfg.layout](cfg, Path(root), split, split_index, index)


def generate_dataset(root: str | os.PathLike[str], cfg: SyntheticConfig, workers: int | None = None) -> Path:
    """Write the dataset described by ``cfg`` under ``root`` and a ``synthetic.json`` record; return ``root``.

    ``workers > 1`` renders videos in ``forkserver`` processes (not ``fork``: forking a process whose
    OpenCV/torch thread pools are running can deadlock); the calling script then needs a
    ``if __name__ == "__main__":`` guard. Output bytes do not depend on ``workers``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    jobs = []
    for split_index, (split, count) in enumerate(zip(SPLITS[cfg.layout], (cfg.num_videos, cfg.num_val_videos))):
        jobs += [(cfg, str(root), split_index, i, split) for i in range(count)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
            results = list(pool.map(_job, jobs))
    else:
        results = [_job(job) for job in jobs]
    _write_indices(root, cfg, results)
    atomic_write_text(root / "synthetic.json", json.dumps({"config": cfg.to_dict(), "videos": len(results)}, indent=1))
    return root


def _write_indices(root: Path, cfg: SyntheticConfig, results: list[dict[str, Any]]) -> None:
    """Write the per-split index files (ImageSets, meta.json, YouTube-VIS JSON)."""
    for split in SPLITS[cfg.layout]:
        items = [r for r in results if r["split"] == split]
        if cfg.layout == "davis" and items:
            write_davis_split(root, split, [r["video"] for r in items])
        elif cfg.layout == "youtube_vos" and items:
            write_youtube_vos_meta(root, split, {r["video"]: r["objects"] for r in items})
        elif cfg.layout == "youtube_vis" and items:
            categories = {c: category_name(c, cfg.num_colors) for c in range(1, cfg.num_shapes * cfg.num_colors + 1)}
            anns = [a for r in items for a in r["annotations"]]
            data = build_youtube_vis_json([r["video_info"] for r in items], categories, None)
            data["annotations"] = [{"id": i, **a} for i, a in enumerate(anns, start=1)]
            write_json(root / f"{split}.json", data)
