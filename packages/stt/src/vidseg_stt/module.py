"""``STTModule``: training and evaluation of STT (and its per-frame baseline) with the vidseg engine.

Batches come from ``VSSDataModule``: ``frames (B, T+1, 3, H, W)`` (ImageNet-normalised, annotated frame last)
and ``label (B, H, W)`` (255 = void). Loss: TDNet's OHEM cross-entropy on the annotated frame (thresh 0.7,
``n_min = B·H·W/16``); TDNet's auxiliary and distillation terms are not part of STT's description and are
not used.

Validation (vss.md §3):

* ``val/miou``: mIoU of the annotated frames over the split (one confusion matrix, vss.md §3.2); per-class
  IoUs as ``val/iou/<trainId>``.
* ``val/miou_corrupted`` / ``val/miou_clean``: the same on the annotated frames that do / do not lie in a
  corruption burst (synthetic sets only; flags from :func:`~vidseg_stt.video_eval.synthetic_corruptions`).
  This is where temporal aggregation should pay off: a corrupted frame's own features are poor, its
  clean predecessors are not.
* ``val/tc``: ETC's temporal consistency of *streamed* predictions over each val video's whole snippet
  (flow backend ``tc_flow``: OpenCV DIS by default, ``gt`` = the synthetic generator's exact flow).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.data.formats.png import write_index_png
from vidseg_common.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vidseg_common.engine.module import VidSegModule
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.io import resolve_inside
from vidseg_common.metrics.tc import TemporalConsistency
from vidseg_common.metrics.vss import SegmentationIoU
from vidseg_common.models.losses import OhemCrossEntropy
from vidseg_stt.bisenet import BiSeNetDecoder, BiSeNetEncoder
from vidseg_stt.model import FCNDecoder, PSPEncoder, StreamCache, STTNet
from vidseg_stt.stt import SparseTemporalTransformer
from vidseg_stt.video_eval import VideoTC, synthetic_corruptions


class STTModule(VidSegModule):
    """STT-PSP / STT-BiSe (``use_stt: true``) or the per-frame image model (``use_stt: false``).

    Args:
        num_classes: 19 (Cityscapes) or 11 (CamVid).
        encoder: ``psp`` (PSPNet split, :class:`PSPEncoder` + :class:`FCNDecoder`) or ``bisenet`` (BiSeNet split,
            :mod:`vidseg_stt.bisenet`; ``output_stride``, ``ppm_bins`` and ``decoder_*`` then do not apply).
        backbone: timm ResNet name of the encoder (``resnet18`` = PSP18/BiSe18, ``resnet34`` = BiSe34,
            ``resnet101`` = PSP101).
        pretrained: ``False``, ``True`` (timm download) or a local weights file.
        output_stride: encoder output stride (8 as in PSPNet/TDNet).
        ppm_bins: pyramid pooling bins.
        decoder_channel_down: the decoder's 3×3 conv has ``d_t / decoder_channel_down`` channels.
        decoder_dropout: Dropout2d of the decoder.
        use_stt: insert the Sparse Temporal Transformer; ``false`` = per-frame baseline.
        reduction: STT channel reduction ``d_t → d_t / reduction`` (paper: 4).
        num_heads: attention heads.
        ffn_dim: FFN hidden width (``None`` = ``d̂ = d / num_heads`` as printed).
        stt_dropout: dropout inside the STT block.
        nsm_radius: NSM radius ``r`` (Table 4: 5).
        top_ratio: kept query fraction (Table 4: 0.5).
        key_start: ``s`` (Table 3: 1).
        key_end: ``e`` (Table 3: 5).
        key_expansion: ``ε`` (Table 3: 1).
        num_key_frames: ``T`` (7, derived from Table 3).
        full_attention: Table 3's full-key row (all ``T·h·w`` keys).
        stt_zero_init: start the STT output projection at zero (the block starts as the identity).
        ohem_thresh: OHEM probability threshold.
        ohem_min_fraction: OHEM keeps at least this fraction of the batch's pixels (TDNet: 1/16).
        ignore_index: void label.
        tc_flow: flow backend of ``val/tc`` (``dis``, ``gt``) or ``None`` to skip TC.
        tc_mode: ``etc`` (ETC's ``eval_tc.py``) or ``clean`` (nearest warp, occlusion check off without back flow).
        tc_max_videos: TC on the first ``tc_max_videos`` val videos only (``None``: all).
        predict_dir: folder of the label PNGs written by ``predict`` (default
            ``<trainer.default_root_dir>/predictions``).
        **kwargs: optimizer / scheduler / bn_mode / bn_scope of :class:`VidSegModule`.
    """

    def __init__(
        self,
        num_classes: int = 19,
        encoder: str = "psp",
        backbone: str = "resnet18",
        pretrained: bool | str = False,
        output_stride: int = 8,
        ppm_bins: Sequence[int] = (1, 2, 3, 6),
        decoder_channel_down: int = 4,
        decoder_dropout: float = 0.1,
        use_stt: bool = True,
        reduction: int = 4,
        num_heads: int = 8,
        ffn_dim: int | None = None,
        stt_dropout: float = 0.1,
        nsm_radius: int = 5,
        top_ratio: float = 0.5,
        key_start: int = 1,
        key_end: int = 5,
        key_expansion: int = 1,
        num_key_frames: int = 7,
        full_attention: bool = False,
        stt_zero_init: bool = True,
        ohem_thresh: float = 0.7,
        ohem_min_fraction: float = 1 / 16,
        ignore_index: int = 255,
        tc_flow: str | None = "dis",
        tc_mode: str = "etc",
        tc_max_videos: int | None = None,
        predict_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ConfigError(f"model.num_classes must be >= 2, got {num_classes}")
        if not 0.0 < ohem_min_fraction <= 1.0:
            raise ConfigError(f"model.ohem_min_fraction must lie in (0, 1], got {ohem_min_fraction}")
        if encoder not in ("psp", "bisenet"):
            raise ConfigError(f"model.encoder must be 'psp' or 'bisenet', got {encoder!r}")
        psp = encoder == "psp"
        self.backbone: nn.Module = (PSPEncoder(backbone, pretrained, output_stride, ppm_bins) if psp
                                    else BiSeNetEncoder(backbone, pretrained))
        stt = None
        if use_stt:
            stt = SparseTemporalTransformer(
                self.backbone.out_channels, reduction, num_heads, ffn_dim, stt_dropout, nsm_radius, top_ratio,
                key_start, key_end, key_expansion, num_key_frames, full_attention, stt_zero_init)
        self.stt = stt
        self.decoder: nn.Module = (
            FCNDecoder(self.backbone.out_channels, num_classes, decoder_channel_down, decoder_dropout) if psp
            else BiSeNetDecoder(self.backbone.out_channels, num_classes))
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.ohem_thresh, self.ohem_min_fraction = ohem_thresh, ohem_min_fraction
        self.predict_dir = predict_dir
        if tc_flow not in (None, "dis", "gt") or tc_mode not in ("etc", "clean"):
            raise ConfigError(f"model.tc_flow must be dis, gt or null and tc_mode etc or clean, got {tc_flow!r}, {tc_mode!r}")
        self.tc_flow, self.tc_mode, self.tc_max_videos = tc_flow, tc_mode, tc_max_videos
        self.val_iou = SegmentationIoU(num_classes, ignore_index=ignore_index)
        self.val_iou_corrupted = SegmentationIoU(num_classes, ignore_index=ignore_index)
        self.val_iou_clean = SegmentationIoU(num_classes, ignore_index=ignore_index)
        self.val_tc = TemporalConsistency(num_classes, mode=tc_mode)  # type: ignore[arg-type]
        self._corruptions: dict[str, set[int]] | None = None
        self._video_tc: VideoTC | None = None

    @property
    def net(self) -> STTNet:
        """The pure ``nn.Module`` network (shares this module's parameters)."""
        return STTNet(self.backbone, self.decoder, self.stt)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames (B, T'+1, 3, H, W)`` → logits ``(B, K, H, W)`` of the last frame."""
        return self.net(frames)

    def stream_step(self, frame: torch.Tensor, cache: StreamCache) -> torch.Tensor:
        """One frame ``(B, 3, H, W)`` of streaming inference → logits ``(B, K, H, W)`` (see ``STTNet.stream_step``)."""
        return self.net.stream_step(frame, cache)

    def example_inputs(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[Any, ...]:
        """``vidseg-stt benchmark`` inputs: ``frames (B, num_frames, 3, H, W)`` and a cache already holding ``T``
        encoded frames, so every timed frame runs with a full memory (steady-state streaming)."""
        frames = torch.rand(batch_size, num_frames, 3, height, width, device=self.device)
        cache: StreamCache = []
        if self.stt is not None:
            for _ in range(self.stt.num_key_frames):
                self.stream_step(torch.rand(batch_size, 3, height, width, device=self.device), cache)
        return frames, cache

    def benchmark_forward(self, frames: torch.Tensor, cache: StreamCache) -> torch.Tensor:
        """Stream ``frames (B, N, 3, H, W)`` (each encoded once, a copy of ``cache`` as memory) → last logits.

        The benchmark's frames/s is then the paper's streaming fps (one new frame per output).
        """
        cache = list(cache)
        logits = frames.new_empty(0)
        for t in range(frames.shape[1]):
            logits = self.stream_step(frames[:, t], cache)
        return logits

    def loss(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """OHEM CE of ``logits (B, K, H, W)`` against ``label (B, H, W)``."""
        if logits.shape[-2:] != label.shape[-2:]:
            raise DataError(f"label size {tuple(label.shape[-2:])} differs from the frames' {tuple(logits.shape[-2:])}")
        n_min = max(1, int(label.numel() * self.ohem_min_fraction))
        return OhemCrossEntropy(self.ohem_thresh, n_min, self.ignore_index)(logits, label)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["frames"])
        loss = self.loss(logits, batch["label"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch["frames"])
        label = batch["label"]
        self.log("val/loss", self.loss(logits, label), on_epoch=True, batch_size=logits.shape[0], sync_dist=True)
        pred = logits.argmax(1)
        self.val_iou.update(pred, label)
        corruptions = self._val_corruptions()
        if corruptions:
            flags = torch.tensor([0 in corruptions.get(m["sample"], ()) for m in batch["meta"]], device=pred.device)
            self.val_iou_corrupted.update(pred[flags], label[flags])
            self.val_iou_clean.update(pred[~flags], label[~flags])
        return {"pred": pred}

    def on_validation_epoch_end(self) -> None:
        result = self.val_iou.compute()
        self.log("val/miou", result["mIoU"].float().nan_to_num(0.0), sync_dist=False)
        for c, iou in enumerate(result["IoU"].tolist()):
            if iou == iou:  # classes present in GT or prediction
                self.log(f"val/iou/{c}", float(iou), sync_dist=False)
        if self._val_corruptions():
            for name, metric in (("corrupted", self.val_iou_corrupted), ("clean", self.val_iou_clean)):
                miou = metric.compute()["mIoU"].float()
                if not miou.isnan():  # the group has samples
                    self.log(f"val/miou_{name}", miou, sync_dist=False)
        for metric in (self.val_iou, self.val_iou_corrupted, self.val_iou_clean):
            metric.reset()
        video_tc = self._validation_videos()
        if video_tc is not None and not self.trainer.sanity_checking:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            augment = self.trainer.datamodule.datasets["val"].augment
            video_tc.evaluate(self.stream_step, lambda frames: augment(frames)[0].to(self.device), self.val_tc,
                              video_tc.stems[rank::world])
            self.log("val/tc", self.val_tc.compute()["TC"].float(), sync_dist=False)
            self.val_tc.reset()

    def _val_dataset(self) -> Any:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        datasets = getattr(datamodule, "datasets", {})
        return datamodule, datasets.get("val")

    def _val_corruptions(self) -> dict[str, set[int]]:
        """Corrupted frames of the synthetic val split (``{}`` for real data or without a datamodule)."""
        if self._corruptions is None:
            datamodule, dataset = self._val_dataset()
            self._corruptions = {}
            if dataset is not None and hasattr(datamodule, "resolved_root"):
                self._corruptions = synthetic_corruptions(datamodule.resolved_root(), dataset.reader.split)
        return self._corruptions

    def _validation_videos(self) -> VideoTC | None:
        """The TC evaluator of the val videos (``None`` when TC is off or there is no VSS datamodule)."""
        if self.tc_flow is None:
            return None
        if self._video_tc is None:
            datamodule, dataset = self._val_dataset()
            if dataset is None or not hasattr(datamodule, "resolved_root"):
                return None
            self._video_tc = VideoTC(dataset.reader, datamodule.resolved_root(), self.tc_flow, self.num_classes,
                                     self.tc_mode, self.tc_max_videos)  # type: ignore[arg-type]
        return self._video_tc

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        """Write the annotated frame's prediction as ``<predict_dir>/<sample>.png`` (trainIds, palette PNG).

        As ETC's ``gen_video.py``: single scale, no flip, argmax, uint8 trainIds at the original frame size
        (the evaluation padding, bottom/right, is cropped; a resized input is upsampled back bilinearly).

        Returns:
            The written paths.
        """
        logits = self(batch["frames"])
        root = Path(self.predict_dir) if self.predict_dir else Path(self.trainer.default_root_dir) / "predictions"
        paths = []
        for logit, meta in zip(logits, batch["meta"]):
            height, width = (int(v) for v in meta["size"])
            if logit.shape[-2] >= height and logit.shape[-1] >= width and self._padded_only(logit, height, width):
                logit = logit[:, :height, :width]
            else:
                logit = F.interpolate(logit[None], size=(height, width), mode="bilinear", align_corners=False)[0]
            path = resolve_inside(root, f"{meta['sample']}.png", "prediction")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_index_png(path, logit.argmax(0).to(torch.uint8).cpu().numpy())
            paths.append(str(path))
        return paths

    def _padded_only(self, logit: torch.Tensor, height: int, width: int) -> bool:
        """Whether the input was only padded (to the datamodule's stride multiple), not resized."""
        divisor = int(getattr(getattr(self.trainer, "datamodule", None), "eval_augment", {}).get("pad_divisor", 1) or 1)
        return logit.shape[-2] - height < divisor and logit.shape[-1] - width < divisor

    def render_overlay(self, batch: dict[str, Any], outputs: dict[str, torch.Tensor]) -> np.ndarray:
        """Annotated frame blended with the predicted classes in the dataset's official colours (Cityscapes
        trainIds or CamVid, from the datamodule; Cityscapes when there is none): ``(H, W, 3) uint8``."""
        from vidseg_common.viz import overlay_classes, overlay_ids, to_uint8_image

        image = to_uint8_image(batch["frames"][0, -1], IMAGENET_MEAN, IMAGENET_STD)
        pred = outputs["pred"][0].cpu().numpy()
        dataset = getattr(getattr(self.trainer, "datamodule", None), "dataset", "cityscapes") if self._trainer else "cityscapes"
        if self.num_classes == {"cityscapes": 19, "camvid": 11}.get(dataset):
            return overlay_classes(image, pred, dataset)
        return overlay_ids(image, pred % 254 + 1, outline=False)  # a label set without official colours
