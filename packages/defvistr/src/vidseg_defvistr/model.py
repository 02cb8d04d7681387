"""Deformable VisTR / VisTR network (pure ``nn.Module``; docs/reference/vis.md §2.1, §2.4, §2.7).

Pipeline for a clip ``frames (B, T, 3, H, W)``:

1. ResNet backbone per frame → ``f4, f8, f16, f32``; only the last stage (res5, ``f32``) enters the transformer
   through a 1×1 ``input_proj`` to C channels (no GroupNorm, single scale: "ResNet-50 without FPN"). With
   ``dilation=True`` res5 is dilated instead of strided (DETR/VisTR's ``--dilation`` "DC5" option, stride 16:
   4× the tokens); the mask head's FPN inputs stay res4/res3/res2 (``f16, f8, f4``) as in DETR.
2. 3-D sine positional encoding (C/3 features per axis, (t, y, x), no −0.5 offset).
3. :class:`~vidseg_defvistr.transformer.VisTRTransformer` over the ``T·H/32·W/32`` tokens with ``Q = T·N``
   learned query embeddings in **frame-major** order ``q = t·N + i`` (instance slot i of frame t).
4. Heads shared over decoder layers: ``class_embed`` Linear(C, K+1) (dataset category ids index directly,
   the last logit is no-object), ``bbox_embed`` 3-layer MLP + sigmoid (cx, cy, w, h).
5. VisTR mask head on the last decoder layer: per-frame attention maps + FPN conv head with DCN, then a 3-D
   conv per instance over the T frames → ``pred_masks (B, Q, H/4, W/4)`` frame-major.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from vidseg_common.models.backbone import TimmBackbone
from vidseg_common.models.mlp import MLP
from vidseg_common.models.position_encoding import PositionEmbeddingSine3D
from vidseg_defvistr.mask_head import InstanceMaskHead3D, MaskHeadSmallConv, MHAttentionMap
from vidseg_defvistr.transformer import Attention, VisTRTransformer


class DeformableVisTR(nn.Module):
    """VisTR with optional spatio-temporal deformable attention.

    Args:
        num_classes: class logits before no-object (YouTube-VIS 2019: 41, so ids 1..40 index directly).
        num_frames: clip length T the queries are laid out for (paper 36).
        num_instances: instance slots N per frame (paper 10).
        backbone: timm name (``resnet50`` in the paper).
        pretrained: backbone weights (``False``, ``True`` or a local file).
        frozen_backbone: parameter-name patterns of the backbone to freeze.
        hidden_dim: C (384; must be divisible by 6 for the 3-D sine encoding and by ``n_heads``).
        n_heads: M (8).
        num_encoder_layers: 6.
        num_decoder_layers: 6.
        dim_feedforward: 2048.
        dropout: 0.1.
        attention: ``deformable`` (Deformable VisTR) or ``dense`` (VisTR).
        n_points: K per head (32).
        aux_loss: return the intermediate decoder layers' predictions.
        dilation: DC5 backbone (res5 dilated, transformer features at stride 16; DETR/VisTR ``--dilation``).
    """

    def __init__(
        self,
        num_classes: int = 41,
        num_frames: int = 36,
        num_instances: int = 10,
        backbone: str = "resnet50",
        pretrained: bool | str = False,
        frozen_backbone: Sequence[str] = (),
        hidden_dim: int = 384,
        n_heads: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        attention: Attention = "deformable",
        n_points: int = 32,
        aux_loss: bool = True,
        dilation: bool = False,
    ) -> None:
        super().__init__()
        if hidden_dim % 6 != 0 or hidden_dim % n_heads != 0:
            raise ValueError(f"hidden_dim={hidden_dim} must be divisible by 6 and by n_heads={n_heads}")
        self.num_frames, self.num_instances, self.num_classes = num_frames, num_instances, num_classes
        self.num_queries = num_frames * num_instances
        self.aux_loss = aux_loss
        self.backbone = TimmBackbone(backbone, out_indices=(1, 2, 3, 4), pretrained=pretrained,
                                     output_stride=16 if dilation else 32, frozen=frozen_backbone)
        channels = self.backbone.out_channels
        self.res5_key = self.backbone.names[-1]  # "f32", or "f16_res5" with dilation
        self.input_proj = nn.Conv2d(channels[self.res5_key], hidden_dim, 1)
        self.position = PositionEmbeddingSine3D(hidden_dim // 3)
        self.transformer = VisTRTransformer(
            hidden_dim, n_heads, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout, attention,
            n_points, num_frames, num_instances,
        )
        self.query_embed = nn.Embedding(self.num_queries, hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.bbox_embed = MLP(hidden_dim, hidden_dim, 4, 3)
        self.bbox_attention = MHAttentionMap(hidden_dim, hidden_dim, n_heads)
        self.mask_head = MaskHeadSmallConv(
            hidden_dim + n_heads, (channels["f16"], channels["f8"], channels["f4"]), hidden_dim
        )
        self.insmask_head = InstanceMaskHead3D(self.mask_head.out_channels)

    def forward(self, frames: Tensor) -> dict[str, Tensor | list[dict[str, Tensor]]]:
        """Predict instance sequences for a clip.

        Args:
            frames: ``(B, T, 3, H, W)`` normalised frames, ``T == num_frames``, H and W multiples of 32.

        Returns:
            ``pred_logits (B, Q, K+1)``, ``pred_boxes (B, Q, 4)`` (sigmoid cxcywh), ``pred_masks (B, Q, H/4, W/4)``
            logits, all frame-major ``q = t·N + i``; ``aux_outputs``: list of ``{pred_logits, pred_boxes}`` of
            the first ``L_dec − 1`` decoder layers (when ``aux_loss``).
        """
        b, t = frames.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"DeformableVisTR was built for clips of {self.num_frames} frames, got {t}")
        feats = self.backbone(frames.flatten(0, 1))
        src = self.input_proj(feats[self.res5_key])  # stride 32 (16 with dilation)
        h, w = src.shape[-2:]
        src = src.view(b, t, -1, h, w)
        pos = self.position(src.new_zeros(b, t, h, w, dtype=bool)).to(src.dtype)
        hs, memory = self.transformer(src, pos, self.query_embed.weight)
        logits = self.class_embed(hs)
        boxes = self.bbox_embed(hs).sigmoid()
        out: dict[str, Tensor | list[dict[str, Tensor]]] = {"pred_logits": logits[-1], "pred_boxes": boxes[-1]}
        if self.aux_loss:
            out["aux_outputs"] = [{"pred_logits": lg, "pred_boxes": bx} for lg, bx in zip(logits[:-1], boxes[:-1])]
        out["pred_masks"] = self._masks(hs[-1], memory, feats, b, t)
        return out

    def _masks(self, hs: Tensor, memory: Tensor, feats: dict[str, Tensor], b: int, t: int) -> Tensor:
        """``hs (B, Q, C)``, ``memory (B, T, C, h, w)`` (stride 32, or 16 with dilation) → mask logits
        ``(B, Q, H/4, W/4)``."""
        n = self.num_instances
        memory_frames = memory.flatten(0, 1)  # (B·T, C, h, w)
        queries = hs.reshape(b * t, n, -1)  # frame-major: the N queries of each frame
        maps = self.bbox_attention(queries, memory_frames)
        feat_f4 = self.mask_head(memory_frames, maps, (feats["f16"], feats["f8"], feats["f4"]))
        c, h4, w4 = feat_f4.shape[1:]
        per_instance = feat_f4.view(b, t, n, c, h4, w4).permute(0, 2, 3, 1, 4, 5).reshape(b * n, c, t, h4, w4)
        logits = self.insmask_head(per_instance).view(b, n, t, h4, w4)
        return logits.transpose(1, 2).reshape(b, t * n, h4, w4)
