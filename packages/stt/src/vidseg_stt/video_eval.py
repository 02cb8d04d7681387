"""Whole-video evaluation helpers of STT: streaming predictions for TC, flows, synthetic corruption flags.

* :func:`stream_predictions`: each frame of a video is encoded once and fed to ``STTNet.stream_step`` (the
  paper's cached-feature inference); returns the arg-max class ids of every frame.
* :class:`VideoTC`: temporal consistency (``vidseg_common.metrics.TemporalConsistency``, ETC mode by default)
  of streamed predictions over whole Cityscapes snippets / CamVid videos of a reader, with the flow from a
  backend of :mod:`vidseg_common.metrics.flow` (DIS by default, ``gt`` = the generator's ``.flo`` files).
  Flows do not change between validation epochs and are cached in memory.
* :func:`synthetic_corruptions`: which frames of a synthetic Cityscapes-layout set carry a corruption burst.
  The generator does not write this down, so it is recomputed by replaying the generator's seeded random
  stream (scene sampling, then ``apply_corruptions`` on a blank video of the same shape); a test checks the
  replay against the rendered frames.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from vidseg_common.data.formats.cityscapes_sequence import SNIPPET_AFTER, SNIPPET_BEFORE, make_stem
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.generator import SPLITS
from vidseg_common.data.synthetic.render import apply_corruptions
from vidseg_common.data.synthetic.scenes import sample_semantic_scene
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.metrics.flow import DISFlow, GroundTruthFlow
from vidseg_common.metrics.tc import Mode, TemporalConsistency
from vidseg_common.metrics.vss import SegmentationIoU

FlowFn = Callable[[str, str, np.ndarray, np.ndarray], np.ndarray]


@torch.no_grad()
def stream_predictions(step: Callable[[torch.Tensor, list], torch.Tensor], frames: torch.Tensor,
                       size: tuple[int, int]) -> torch.Tensor:
    """Class ids of every frame of a video, predicted as a stream.

    Args:
        step: ``stream_step(frame (1, 3, H', W'), cache) → logits (1, K, H', W')``.
        frames: ``(N, 3, H', W')`` normalised (and padded) frames in time order.
        size: ``(H, W)`` of the original frames; the bottom/right padding is cropped.

    Returns:
        ``(N, H, W)`` long class ids.
    """
    cache: list = []
    preds = [step(frame[None], cache)[0].argmax(0)[: size[0], : size[1]] for frame in frames]
    return torch.stack(preds)


def flow_backend(name: str, root: Path) -> FlowFn:
    """``"dis"`` (OpenCV DIS medium, the default of the paper-protocol TC) or ``"gt"`` (``<root>/flow``)."""
    if name == "dis":
        return DISFlow("medium")
    if name == "gt":
        if not (root / "flow").is_dir():
            raise ConfigError(f"model.tc_flow=gt but {root / 'flow'} does not exist (only synthetic sets have GT flow)")
        return GroundTruthFlow(root / "flow")
    raise ConfigError(f"model.tc_flow must be 'dis', 'gt' or null, got {name!r}")


class VideoTC:
    """TC of streamed predictions over the videos of a VSS reader.

    Args:
        reader: a ``CityscapesSequenceReader`` (or any reader with ``samples``, ``offset_range``,
            ``frame_stem``, ``read_frame``).
        root: dataset root (for the ``gt`` flow backend).
        flow: ``"dis"`` or ``"gt"``.
        num_classes: classes of the TC confusion.
        mode: ``"etc"`` (ETC's ``eval_tc.py``) or ``"clean"``.
        max_videos: evaluate only the first ``max_videos`` samples (``None``: all).
    """

    def __init__(self, reader: Any, root: Path, flow: str = "dis", num_classes: int = 19, mode: Mode = "etc",
                 max_videos: int | None = None) -> None:
        self.reader, self.flow = reader, flow_backend(flow, Path(root))
        self.num_classes, self.mode = num_classes, mode
        stems = reader.samples()
        self.stems = stems if max_videos is None else stems[:max_videos]
        self._flows: dict[str, torch.Tensor] = {}

    def video(self, stem: str) -> tuple[np.ndarray, torch.Tensor]:
        """Frames ``(N, H, W, 3) uint8`` of a sample's whole snippet and its forward flows ``(N−1, H, W, 2)``."""
        lo, hi = self.reader.offset_range(stem)
        frames = np.stack([self.reader.read_frame(stem, o) for o in range(lo, hi + 1)])
        if stem not in self._flows:
            names = [self.reader.frame_stem(stem, o) for o in range(lo, hi)]
            flows = [self.flow(stem, name, frames[i], frames[i + 1]) for i, name in enumerate(names)]
            self._flows[stem] = torch.from_numpy(np.stack(flows))
        return frames, self._flows[stem]

    def evaluate(self, step: Callable[[torch.Tensor, list], torch.Tensor], transform: Callable[[np.ndarray], torch.Tensor],
                 metric: TemporalConsistency, stems: list[str] | None = None) -> None:
        """Stream every video of ``stems`` (default all) through ``step`` and add its pairs to ``metric``.

        Args:
            step: ``stream_step`` of the model.
            transform: ``(N, H, W, 3) uint8`` → ``(N, 3, H', W')`` normalised tensor on the model's device.
            metric: the TC accumulator.
            stems: a subset (e.g. this rank's share under DDP).
        """
        for stem in self.stems if stems is None else stems:
            frames, flows = self.video(stem)
            preds = stream_predictions(step, transform(frames), frames.shape[1:3])
            metric.update(preds.cpu(), flows)


def synthetic_corruptions(root: str | Path, split: str) -> dict[str, set[int]]:
    """Corrupted frames of a synthetic Cityscapes-layout split: sample stem → offsets from its annotated frame.

    Returns ``{}`` when ``root`` is not a synthetic Cityscapes-layout set (no ``synthetic.json``).
    """
    record = Path(root) / "synthetic.json"
    if not record.is_file():
        return {}
    try:
        cfg = SyntheticConfig(**json.loads(record.read_text())["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{record}: not a synthetic-generator record ({err})") from err
    if cfg.layout != "cityscapes" or split not in SPLITS["cityscapes"] or cfg.corruption_prob == 0:
        return {}
    split_index = SPLITS["cityscapes"].index(split)
    count = (cfg.num_videos, cfg.num_val_videos)[split_index]
    city = "aachen" if split == "train" else "frankfurt"
    num_frames = SNIPPET_BEFORE + SNIPPET_AFTER + 1
    out = {}
    for index in range(count):
        rng = np.random.default_rng([cfg.seed, split_index, index, 0])  # as layouts.render_semantic_video
        sample_semantic_scene(rng, cfg, num_frames)
        blank = np.zeros((num_frames, cfg.height, cfg.width, 3), dtype=np.uint8)
        applied = apply_corruptions(blank, rng, cfg.corruption_prob, cfg.corruption_length, cfg.corruption_strength)
        out[make_stem(city, index, SNIPPET_BEFORE)] = {t - SNIPPET_BEFORE for t, _ in applied}
    return out


class VideoEvaluation(Callback):
    """STT's evaluation beyond the annotated clips (a callback: it reads the val split's whole videos).

    * ``<stage>/miou_corrupted`` / ``_clean``: mIoU of the annotated frames that do / do not lie in a corruption
      burst (synthetic Cityscapes-layout sets only; :func:`synthetic_corruptions`), from the module's outputs;
    * ``<stage>/tc``: TC of streamed predictions over each val video's whole snippet (:class:`VideoTC`; each rank
      streams its share, the metric syncs). Not during the sanity check.

    Built lazily from the ``VSSDataModule`` (its val — or, in ``test``, test — dataset's reader, transform and root).

    Args:
        tc_flow: flow backend of TC (``dis``, ``gt``) or ``None`` to skip TC.
        num_classes: classes of the confusions; ignore_index: void label.
        tc_mode: ``etc`` or ``clean``; tc_max_videos: TC on the first val videos only (``None``: all).
    """

    def __init__(self, tc_flow: str | None, num_classes: int, ignore_index: int, tc_mode: Mode,
                 tc_max_videos: int | None) -> None:
        self.tc_flow, self.num_classes, self.tc_mode, self.tc_max_videos = tc_flow, num_classes, tc_mode, tc_max_videos
        self.iou = {name: SegmentationIoU(num_classes, ignore_index=ignore_index) for name in ("corrupted", "clean")}
        self.tc = TemporalConsistency(num_classes, mode=tc_mode)
        self._corruptions: dict[str, set[int]] | None = None
        self._video_tc: VideoTC | None = None

    @staticmethod
    def _val_dataset(trainer: Trainer) -> tuple[Any, Any]:
        datamodule = getattr(trainer, "datamodule", None)
        dataset = getattr(datamodule, "datasets", {}).get("test" if trainer.testing else "val")
        return (datamodule, dataset) if dataset is not None and hasattr(datamodule, "resolved_root") else (None, None)

    def corruptions(self, trainer: Trainer) -> dict[str, set[int]]:
        """Corrupted frames of the synthetic val split (``{}`` for real data or without a VSS datamodule)."""
        if self._corruptions is None:
            datamodule, dataset = self._val_dataset(trainer)
            self._corruptions = {} if dataset is None else synthetic_corruptions(datamodule.resolved_root(),
                                                                                  dataset.reader.split)
        return self._corruptions

    def _batch_end(self, trainer: Trainer, outputs: Any, batch: Any) -> None:
        corruptions = self.corruptions(trainer)
        if corruptions:
            pred, label = outputs["pred"], batch["label"]
            flags = torch.tensor([0 in corruptions.get(m["sample"], ()) for m in batch["meta"]], device=pred.device)
            self.iou["corrupted"].update(pred[flags], label[flags])
            self.iou["clean"].update(pred[~flags], label[~flags])

    def _epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        stage = "test" if trainer.testing else "val"
        if self.corruptions(trainer):
            for name, metric in self.iou.items():
                miou = metric.compute()["mIoU"].float()
                if not miou.isnan():  # the group has samples
                    module.log(f"{stage}/miou_{name}", miou, sync_dist=False)
        for metric in self.iou.values():
            metric.reset()
        datamodule, dataset = self._val_dataset(trainer)
        if self.tc_flow is None or dataset is None or trainer.sanity_checking:
            return
        if self._video_tc is None:
            self._video_tc = VideoTC(dataset.reader, datamodule.resolved_root(), self.tc_flow, self.num_classes,
                                     self.tc_mode, self.tc_max_videos)
        augment, stems = dataset.augment, self._video_tc.stems[trainer.global_rank :: trainer.world_size]
        self._video_tc.evaluate(module.stream_step, lambda frames: augment(frames)[0].to(module.device), self.tc, stems)
        module.log(f"{stage}/tc", self.tc.compute()["TC"].float(), sync_dist=False)
        self.tc.reset()

    def _epoch_start(self, module: LightningModule) -> None:
        for metric in (*self.iou.values(), self.tc):
            metric.to(module.device)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_start(pl_module)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_start(pl_module)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(trainer, outputs, batch)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._batch_end(trainer, outputs, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer, pl_module)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer, pl_module)
