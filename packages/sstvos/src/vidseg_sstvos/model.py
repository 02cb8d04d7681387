"""``SSTVOSNet``: per-frame embedding → τ-frame buffer → SST encoder → collaborative ensembler (pure nn.Modules).

Data flow for one current frame (``docs/reference/vos.md`` §1.2, §1.10):

1. :class:`FrameEmbedding`: the timm backbone's stride maps (``embed_features``) are projected to ``E``
   channels, resized to the attention stride (default 8, CFBI's local-matching grid) and fused; the stride-4
   map feeds the decoder. Every frame is embedded once and cached (:class:`FrameState`).
2. The buffer holds the ``τ`` preceding frames (fewer at the start of a video) with their object labels,
   downsampled by majority vote to the attention grid (ground truth for annotated frames, the model's own
   prediction otherwise). With ``use_reference`` the reference frame(s) with ground truth are prepended
   [inferred: SST is built inside CFBI, whose global matching always sees the first frame; Table 5's τ = 1
   result (75.8 J&F) is only plausible with it]. The current frame is appended with unknown labels (255).
3. :class:`~vidseg_sstvos.encoder.SSTEncoder` returns the encoded buffer and the current frame's per-layer,
   per-head object affinities; the ensembler turns the current/previous encodings, affinities, previous mask
   and the instance vectors (reference + previous frame) into one logit map per object (background = 0).

Objects that first appear after frame 0 (YouTube-VOS) are inactive (logit ``−1e4``) until their first
annotation, where ground truth overrides the prediction (``pred·[gt = 0] + gt·[gt ≠ 0]``, CFBI) and the frame
joins the reference set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.data.formats.png import VOID_ID
from vidseg_common.errors import ConfigError, DataError
from vidseg_common.models.backbone import TimmBackbone
from vidseg_sstvos.decoder import CollaborativeEnsembler, group_norm
from vidseg_sstvos.encoder import SSTEncoder

INACTIVE_LOGIT = -1e4


@dataclass
class FrameState:
    """One embedded frame with its labels on the attention grid.

    Attributes:
        embedding: ``(B, E, h, w)``.
        soft_masks: ``(B, O, h, w)`` fraction of each cell covered by each object (void counts for none).
        labels: ``(B, h, w)`` int64 majority object id per cell, 255 where void covers most of the cell.
    """

    embedding: torch.Tensor
    soft_masks: torch.Tensor
    labels: torch.Tensor


def downsample_labels(labels: torch.Tensor, num_objects: int, size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``labels (B, H, W)`` (255 void) → soft masks ``(B, O, h, w)`` (area fractions) and majority ids ``(B, h, w)``."""
    valid = labels != VOID_ID
    one_hot = F.one_hot(labels.clamp(0, num_objects - 1) * valid, num_objects).permute(0, 3, 1, 2).to(torch.float32)
    one_hot = one_hot * valid[:, None]
    soft = F.adaptive_avg_pool2d(one_hot, tuple(size))
    ids = soft.argmax(dim=1)
    ids = torch.where(soft.sum(1) >= 0.5, ids, torch.full_like(ids, VOID_ID))
    return soft, ids


def instance_vectors(reference: FrameState, previous: FrameState) -> torch.Tensor:
    """CFBI's instance-level attention vector: mean fg / bg embedding of reference and previous frame, ``(B, O, 4E)``."""
    parts = []
    for state in (reference, previous):
        emb, m = state.embedding, state.soft_masks  # (B, E, h, w), (B, O, h, w)
        fg = torch.einsum("behw,bohw->boe", emb, m) / m.sum((2, 3))[..., None].clamp_min(1e-5)
        bg_m = 1 - m
        bg = torch.einsum("behw,bohw->boe", emb, bg_m) / bg_m.sum((2, 3))[..., None].clamp_min(1e-5)
        parts += [fg, bg]
    return torch.cat(parts, dim=-1)


class FrameEmbedding(nn.Module):
    """Backbone maps → ``E``-channel embedding at the attention stride, plus the stride-4 map.

    Args:
        backbone: the timm feature extractor.
        embed_dim: ``E``.
        embed_features: backbone keys fused into the embedding (``f8``, ``f16``, …).
        attention_stride: stride of the embedding (4, 8 or 16; a key ``f{stride}`` must exist).
    """

    def __init__(self, backbone: TimmBackbone, embed_dim: int, embed_features: Sequence[str], attention_stride: int) -> None:
        super().__init__()
        available = backbone.out_channels
        self.target = f"f{attention_stride}"
        missing = [k for k in (*embed_features, self.target, "f4") if k not in available]
        if missing:
            raise ConfigError(f"model: backbone outputs {sorted(available)} lack {missing} (check backbone_out_indices / attention_stride)")
        self.keys = list(embed_features)
        self.lateral = nn.ModuleList(nn.Conv2d(available[k], embed_dim, 1) for k in self.keys)
        self.head = nn.Sequential(nn.Conv2d(embed_dim, embed_dim, 3, padding=1, bias=False), group_norm(embed_dim),
                                  nn.ReLU(inplace=True), nn.Conv2d(embed_dim, embed_dim, 1))
        self.low_level_channels = available["f4"]

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` of ``(N, 3, H, W)`` images → ``embedding (N, E, H/s, W/s)``, ``f4 (N, C4, H/4, W/4)``."""
        size = features[self.target].shape[-2:]
        fused = sum(F.interpolate(conv(features[k]), size=size, mode="bilinear", align_corners=False)
                    for k, conv in zip(self.keys, self.lateral))
        return self.head(fused), features["f4"]


class SSTVOSNet(nn.Module):
    """The SSTVOS network (shares its sub-modules with the LightningModule).

    Args:
        backbone: timm feature extractor.
        embedding: :class:`FrameEmbedding`.
        encoder: :class:`SSTEncoder`.
        decoder: :class:`CollaborativeEnsembler`.
        history: ``τ``, buffer frames preceding the current one (Table 5).
        use_reference: prepend the reference frame(s) to the buffer.
    """

    def __init__(self, backbone: nn.Module, embedding: FrameEmbedding, encoder: SSTEncoder, decoder: CollaborativeEnsembler,
                 history: int = 3, use_reference: bool = True) -> None:
        super().__init__()
        if history < 1:
            raise ConfigError(f"model.history (τ) must be >= 1, got {history}")
        self.backbone, self.embedding, self.encoder, self.decoder = backbone, embedding, encoder, decoder
        self.history, self.use_reference = history, use_reference

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images (N, 3, H, W)`` → ``embedding (N, E, h, w)``, ``f4 (N, C4, H/4, W/4)``."""
        return self.embedding(self.backbone(images))

    def state(self, embedding: torch.Tensor, labels: torch.Tensor, num_objects: int) -> FrameState:
        """A :class:`FrameState` from an embedding and full-resolution labels ``(B, H, W)``."""
        soft, ids = downsample_labels(labels, num_objects, embedding.shape[-2:])
        return FrameState(embedding, soft.to(embedding.dtype), ids)

    def segment(
        self,
        embedding: torch.Tensor,
        low_level_f4: torch.Tensor,
        references: Sequence[FrameState],
        memory: Sequence[FrameState],
        num_objects: int,
        image_size: Sequence[int],
    ) -> torch.Tensor:
        """Logits of the current frame.

        Args:
            embedding: ``(B, E, h, w)`` current frame.
            low_level_f4: ``(B, C4, H/4, W/4)`` current frame.
            references: frames with ground truth (the first is the video's first frame).
            memory: preceding frames, oldest first (the last ``τ`` are used; the last one is "previous").
            num_objects: ``O`` (background included).
            image_size: ``(H, W)`` of the output.

        Returns:
            ``(B, O, H, W)`` logits.
        """
        if not memory or not references:
            raise DataError("SSTVOSNet.segment needs at least one reference and one memory frame")
        buffer = list(memory[-self.history:])
        if self.use_reference:
            buffer = [r for r in references if all(r is not m for m in buffer)] + buffer
        x = torch.stack([s.embedding for s in buffer] + [embedding], dim=2)
        unknown = torch.full_like(buffer[0].labels, VOID_ID)
        labels = torch.stack([s.labels for s in buffer] + [unknown], dim=1)
        encoded, affinity = self.encoder(x, labels, num_objects)
        previous = buffer[-1]
        instance = instance_vectors(references[-1], previous)
        logits = self.decoder(encoded[:, :, -1], encoded[:, :, -2], previous.soft_masks, affinity, instance, low_level_f4)
        return F.interpolate(logits, size=tuple(image_size), mode="bilinear", align_corners=True)

    def forward_clip(
        self, frames: torch.Tensor, masks: torch.Tensor, num_objects: torch.Tensor, use_predictions: bool = False
    ) -> list[torch.Tensor]:
        """Training forward over ``[reference, previous, current_1 … current_K]`` clips.

        Args:
            frames: ``(B, 2 + K, 3, H, W)``.
            masks: ``(B, 2 + K, H, W)`` int64 (0 bg, 1..k objects, 255 void); only the reference and previous
                masks (and, unless ``use_predictions``, the earlier current frames') are inputs.
            num_objects: ``(B,)`` objects per clip (background excluded).
            use_predictions: CFBI's sequential training: current frame ``i`` sees the model's own (detached)
                predictions of current frames ``< i`` instead of their ground truth.

        Returns:
            One ``(B, O, H, W)`` logit tensor per current frame, ``O = max(num_objects) + 1``; objects a clip
            does not have get ``−1e4``.
        """
        b, t, _, h, w = frames.shape
        if t < 3:
            raise DataError(f"SSTVOS training clips need reference + previous + >= 1 current frame, got {t} frames")
        num_objects_all = int(num_objects.max()) + 1
        embeddings, f4 = self.embed(frames.flatten(0, 1))
        embeddings = embeddings.unflatten(0, (b, t))
        f4 = f4.unflatten(0, (b, t))
        inactive = torch.arange(num_objects_all, device=frames.device)[None] > num_objects[:, None]  # (B, O)
        reference = self.state(embeddings[:, 0], masks[:, 0], num_objects_all)
        memory = [self.state(embeddings[:, 1], masks[:, 1], num_objects_all)]
        outputs = []
        for i in range(2, t):
            logits = self.segment(embeddings[:, i], f4[:, i], [reference], memory, num_objects_all, (h, w))
            logits = logits.masked_fill(inactive[:, :, None, None], INACTIVE_LOGIT)
            outputs.append(logits)
            labels = logits.detach().argmax(1) if use_predictions else masks[:, i]
            memory.append(self.state(embeddings[:, i], labels, num_objects_all))
            memory = memory[-self.history:]
        return outputs

    @torch.no_grad()
    def infer_video(
        self, frames: torch.Tensor, masks: torch.Tensor, annotated: Sequence[bool] | None = None, num_objects: int | None = None
    ) -> torch.Tensor:
        """Frame-by-frame inference over a whole video (batch 1 in practice).

        Args:
            frames: ``(B, T, 3, H, W)``.
            masks: ``(B, T, H, W)`` ground truth; only frame 0 and frames flagged in ``annotated`` are read
                (objects present there are inserted from that frame on; YouTube-VOS late objects).
            annotated: per frame, whether it carries ground truth to use (default: frame 0 only).
            num_objects: objects in the video, background excluded (default: largest id of the used annotations).

        Returns:
            ``(B, T, H, W)`` int64 predicted ids (frame 0 = its ground truth, void mapped to 0).
        """
        b, t, _, h, w = frames.shape
        annotated = [True] + [False] * (t - 1) if annotated is None else [bool(a) for a in annotated]
        if len(annotated) != t or not annotated[0]:
            raise DataError(f"infer_video: 'annotated' must have {t} entries with frame 0 annotated")
        gt = masks.masked_fill(masks == VOID_ID, 0)
        if num_objects is None:
            num_objects = int(torch.stack([gt[:, i] for i in range(t) if annotated[i]]).max())
        total = num_objects + 1
        active = torch.zeros(b, total, dtype=torch.bool, device=frames.device)
        active[:, 0] = True
        references: list[FrameState] = []
        memory: list[FrameState] = []
        predictions = []
        for i in range(t):
            embedding, f4 = self.embed(frames[:, i])
            if i == 0:
                pred = gt[:, 0]
            else:
                logits = self.segment(embedding, f4, references, memory, total, (h, w))
                pred = logits.masked_fill(~active[:, :, None, None], INACTIVE_LOGIT).argmax(1)
            if annotated[i]:
                if i > 0:
                    pred = torch.where(gt[:, i] != 0, gt[:, i], pred)
                present = F.one_hot(gt[:, i].clamp(max=num_objects), total).flatten(1, 2).any(1)
                active |= present
            state = self.state(embedding, pred, total)
            if annotated[i]:
                references.append(state)
            memory = [*memory, state][-self.history:]
            predictions.append(pred)
        return torch.stack(predictions, dim=1)
