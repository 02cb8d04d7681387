"""``VideoDataModule``: predict any paper on your own video (an mp4/mov/webm/mkv file or a folder of frames).

It turns a :class:`~vidseg_common.data.video_source.VideoSource` into the evaluation batches of the task (the batch
contract of docs/architecture.md "Data contracts", the same normalisation and padding as the datasets'
``ClipAugment(train=False)``), so ``vidseg-<paper> predict`` writes the task's usual predictions:

* ``vos``: one batch, the whole video; frame 0 carries the ``first_mask`` (every other frame is void, as a
  DAVIS test-dev video) → ``<output_dir>/<video>/<frame>.png`` (DAVIS palette);
* ``vis``: one batch, the whole video, ``video_id`` 0 and an empty target → ``<output_dir>/results.json``;
* ``vss``: one sample per frame, the frame and its ``num_previous`` previous frames (repeated at the start, as the
  evaluation's :class:`~vidseg_common.data.sampling.PreviousFrames`) → ``<output_dir>/<video>_<frame>.png``.

Frame names are the source indices as 5 digits (``00000``); ``meta["size"]`` is the video's stored size, so
predictions are written at the original resolution even when ``max_side`` shrinks what the model reads. With
``overlay`` (default) predict also writes ``<output_dir>/<video>_overlay.mp4`` (H.264) and
``<output_dir>/<video>_sheet.png`` (:class:`~vidseg_common.tasks.video_outputs.VideoOutputs`, added to the Trainer's
callbacks by :meth:`VideoDataModule.setup`).

The whole decoded video is held in memory (as float32 network inputs): use ``max_side``, ``every``,
``start`` / ``end`` for long or large videos.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vidseg_common.data.datasets import collate_clips
from vidseg_common.data.first_mask import read_first_mask
from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.data.sampling import PreviousFrames
from vidseg_common.data.transforms import ClipAugment
from vidseg_common.data.video_source import VideoSource
from vidseg_common.errors import ConfigError

log = logging.getLogger(__name__)

TASKS = ("vos", "vis", "vss")


class _Items(Dataset):
    """Ready evaluation items; an item whose ``frames`` is a list of indices takes those frames of ``video``
    (VSS samples share the decoded video instead of copying T+1 frames each)."""

    def __init__(self, items: list[dict[str, Any]], video: torch.Tensor | None = None) -> None:
        self.items, self.video = items, video

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        if isinstance(item["frames"], list):
            assert self.video is not None
            item = {**item, "frames": self.video[item["frames"]]}
        return item


class VideoDataModule(L.LightningDataModule):
    """Predict-only data: one video file or frame folder, batches in the task's evaluation contract.

    Args:
        video: a video file (``.mp4``, ``.mov``, ``.webm``, ``.mkv``) or a folder of ``.jpg`` / ``.png`` frames.
        task: ``vos``, ``vis`` or ``vss`` (the paper's task).
        first_mask: VOS only: the first kept frame's objects — a palette / greyscale PNG of ids, a 0/255 binary
            PNG, an RGB PNG (one object per colour) or a ``.npy`` id array, at the video's size.
        every: keep one frame in ``every``.
        max_side: shrink frames so the long side is at most this before the model reads them (``None``: as stored).
        start: first source frame kept.
        end: one past the last source frame kept (``None``: to the end).
        pad_divisor: pad frames to a multiple of the model stride (the paper config's ``data.pad_divisor``).
        num_previous: VSS only: previous frames per sample (STT: 3).
        eval_gap: VSS only: gap between those frames.
        overlay: also write ``<video>_overlay.mp4`` and ``<video>_sheet.png`` under the model's ``output_dir``.
        fps: frame rate of the overlay video (default: the source's divided by ``every``; 5 for a folder).
        num_workers: DataLoader workers (the items are ready tensors: 0 is right).
    """

    def __init__(
        self,
        video: str,
        task: Literal["vos", "vis", "vss"],
        first_mask: str | None = None,
        every: int = 1,
        max_side: int | None = None,
        start: int = 0,
        end: int | None = None,
        pad_divisor: int = 32,
        num_previous: int = 3,
        eval_gap: int = 1,
        overlay: bool = True,
        fps: float | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"data.task must be one of {TASKS}, got {task!r}")
        if task == "vos" and first_mask is None:
            raise ConfigError("data.first_mask is required for task 'vos' (the objects to follow in the first frame)")
        if task != "vos" and first_mask is not None:
            raise ConfigError(f"data.first_mask is for task 'vos' only (task is {task!r})")
        if pad_divisor < 1 or num_previous < 0 or eval_gap < 1 or (fps is not None and fps <= 0):
            raise ConfigError(f"data.pad_divisor ≥ 1, num_previous ≥ 0, eval_gap ≥ 1 and fps > 0 required, got "
                              f"{pad_divisor}, {num_previous}, {eval_gap}, {fps}")
        self.save_hyperparameters()
        self.video, self.task, self.first_mask = video, task, first_mask
        self.every, self.max_side, self.start, self.end = every, max_side, start, end
        self.pad_divisor, self.num_previous, self.eval_gap = pad_divisor, num_previous, eval_gap
        self.overlay, self.fps, self.num_workers = overlay, fps, num_workers
        self.source: VideoSource | None = None
        self.dataset: _Items | None = None

    @property
    def dataset_name(self) -> str:
        """Name recorded in run tags."""
        return "video"

    def build_items(self) -> _Items:
        """Decode the video and build the task's evaluation items (before collation)."""
        self.source = source = VideoSource(self.video, self.every, self.max_side, self.start, self.end)
        indices, frames = source.read_all()
        names = [f"{i:05d}" for i in indices]
        base = {"video": source.name, "source": "video", "size": tuple(source.source_size)}
        log.info("%s: %d frames of %dx%d (source %dx%d)", source.path, len(indices), frames.shape[2], frames.shape[1],
                 source.source_size[1], source.source_size[0])
        if self.task == "vos":
            assert self.first_mask is not None
            first, num_objects = read_first_mask(self.first_mask, source.source_size, frames.shape[1:3])
            masks = np.full(frames.shape[:3], VOID_ID, np.uint8)
            masks[0] = first
            clip = ClipAugment(False, pad_divisor=self.pad_divisor, mask_fill=VOID_ID).apply(frames, masks)
            assert clip.masks is not None
            meta = {**base, "frames": names, "resized_size": clip.content_size, "padded_size": clip.padded_size,
                    "annotated": [True] + [False] * (len(names) - 1),
                    "first_frame": {k: 0 for k in range(1, num_objects + 1)}}
            return _Items([{"frames": clip.frames, "masks": torch.from_numpy(clip.masks.astype(np.int64)),
                            "num_objects": torch.tensor(num_objects), "meta": meta}])
        clip = ClipAugment(False, pad_divisor=self.pad_divisor, mask_fill=0).apply(frames)
        sizes = {"resized_size": clip.content_size, "padded_size": clip.padded_size}
        if self.task == "vis":
            t, (h, w) = len(names), clip.padded_size
            target = {"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, t, h, w, dtype=torch.bool),
                      "boxes": torch.zeros(0, t, 4), "valid": torch.zeros(0, t, dtype=torch.bool)}
            meta = {**base, **sizes, "video_id": 0, "frames": list(indices),
                    "file_names": [f"{source.name}/{n}.png" for n in names]}
            return _Items([{"frames": clip.frames, "target": target, "meta": meta}])
        sampler = PreviousFrames(self.num_previous, deterministic=True, eval_gap=self.eval_gap)
        label = torch.full(clip.padded_size, VOID_ID, dtype=torch.long)
        items = []
        for position in range(len(names)):
            chosen = [position + offset for offset in sampler(-position)]
            meta = {**base, **sizes, "sample": f"{source.name}_{names[position]}", "frames": [names[i] for i in chosen]}
            items.append({"frames": chosen, "label": label, "meta": meta})
        return _Items(items, clip.frames)

    def setup(self, stage: str | None = None) -> None:
        if stage not in (None, "predict"):
            raise ConfigError(f"VideoDataModule only predicts (a video has no ground truth), not {stage!r}: "
                              "run `predict`")
        if self.dataset is None:
            self.dataset = self.build_items()
        trainer = self.trainer
        if self.overlay and trainer is not None:
            from vidseg_common.tasks.video_outputs import VideoOutputs

            if not any(isinstance(c, VideoOutputs) for c in trainer.callbacks):
                assert self.source is not None
                fps = self.fps or self.source.fps or 5.0
                trainer.callbacks.append(VideoOutputs(self.task, self.source.name, fps, len(self.dataset)))

    def predict_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("predict")
        return DataLoader(self.dataset, batch_size=1, shuffle=False, num_workers=self.num_workers,
                          collate_fn=collate_clips)
