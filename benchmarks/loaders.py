"""Training-loader throughput (clips/s) of each DataModule on synthetic data in the real layouts, 2 workers.

Run: ``python benchmarks/loaders.py [--quick] [--batches N] [--workers W]``.

Each row builds the DataModule with ``root: synthetic`` (generated once into the cache, excluded from
the timing), iterates ``train_dataloader()`` for a warm-up of 2 batches (worker start-up) and then
times ``--batches`` batches: clips/s = clips delivered / wall time. Frames are decoded from the JPEG/PNG
files and augmented exactly as in training; the figure is what a model would wait for on this CPU.
Sizes follow each paper's training input (full run) or are shrunk 4× per side (``--quick``).
Set ``VIDSEG_CACHE`` to keep the generated sets out of the repository's ``.cache``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def cases(quick: bool) -> list[tuple[str, str, Any, dict[str, Any]]]:
    """``(name, protocol/clip, DataModule class, kwargs)`` per row."""
    from vidseg_common.data.datamodules import VISDataModule, VOSDataModule, VSSDataModule

    s = 4 if quick else 1
    base = {"write_flow": False}  # flow is not read by the loaders
    davis = {**base, **base, "height": 480 // s, "width": 854 // s, "num_frames": 30, "num_videos": 4, "num_val_videos": 1}
    vis = {**base, "height": 360 // s, "width": 640 // s, "num_frames": 60, "num_videos": 4, "num_val_videos": 1}
    city = {**base, "height": 1024 // s, "width": 2048 // s, "num_videos": 3, "num_val_videos": 1}
    camvid = {**base, "height": 720 // s, "width": 960 // s, "num_frames": 40, "num_videos": 2, "num_val_videos": 1}
    crop = (384 // s, 384 // s)
    return [
        ("VOSDataModule", "stcn 3 frames, DAVIS 480p, crop 384", VOSDataModule,
         {"dataset": "davis", "protocol": "stcn", "synthetic": davis, "crop_size": crop, "batch_size": 4, "repeat": 100}),
        ("VOSDataModule", "cfbi ref+prev+3, YouTube-VOS, crop 384", VOSDataModule,
         {"dataset": "youtube_vos", "protocol": "cfbi", "synthetic": davis, "crop_size": crop, "batch_size": 4, "repeat": 100}),
        ("VISDataModule", "seqformer 5 frames, short side 288-512", VISDataModule,
         {"protocol": "seqformer", "num_frames": 5, "synthetic": vis, "batch_size": 1, "repeat": 100,
          "short_side": [v // s for v in range(288, 513, 32)], "max_size": 768 // s}),
        ("VISDataModule", "vistr 36 frames, short side 300", VISDataModule,
         {"protocol": "vistr", "num_frames": 36, "synthetic": vis, "batch_size": 1, "repeat": 100,
          "short_side": [300 // s], "max_size": 540 // s}),
        ("VSSDataModule", "stt 3 prev + annotated, Cityscapes, crop 769", VSSDataModule,
         {"dataset": "cityscapes", "synthetic": city, "crop_size": (769 // s, 769 // s), "batch_size": 2, "repeat": 100}),
        ("VSSDataModule", "stt 3 prev + annotated, CamVid, crop 640", VSSDataModule,
         {"dataset": "camvid", "synthetic": camvid, "crop_size": (640 // s, 640 // s), "batch_size": 2, "repeat": 100}),
    ]


def measure(cls: Any, kwargs: dict[str, Any], workers: int, batches: int) -> tuple[float, int, tuple[int, ...]]:
    dm = cls(num_workers=workers, **kwargs)
    dm.prepare_data()
    loader = dm.train_dataloader()
    clips, shape, start, it = 0, (), None, 0
    while it < batches + 2:
        for batch in loader:
            it += 1
            if it == 2:
                start = time.perf_counter()
            elif it > 2:
                clips += batch["frames"].shape[0]
                shape = tuple(batch["frames"].shape[1:])
            if it >= batches + 2:
                break
    return clips / (time.perf_counter() - start), clips, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="frames 4× smaller per side")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per row")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"{'DataModule':<14} {'protocol':<46} {'clip (T,3,H,W)':<20} {'clips':>5} {'clips/s':>8}")
    for name, protocol, cls, kwargs in cases(args.quick):
        rate, clips, shape = measure(cls, kwargs, args.workers, args.batches)
        print(f"{name:<14} {protocol:<46} {shape!s:<20} {clips:>5} {rate:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
