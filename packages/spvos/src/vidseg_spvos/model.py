"""``SpVOSNet``: the STCN memory network (docs/reference/vos.md §2.2) with SpVOS's sparse convolutions swapped in by config.

The network is driven one frame at a time (the sparse layers keep per-video state, SpVOS Eq. 8):
:meth:`SpVOSNet.encode_key` (query encoder, "Q"), :meth:`SpVOSNet.encode_value` (memory encoder, "M"),
:meth:`SpVOSNet.segment` (memory read + decoder "D" + soft aggregation). Which frames run densely is decided
by the caller with :meth:`SpVOSNet.dense` (mixed / semi-mixed processing, SpVOS §III-E).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from vidseg_common.ops.sparse_conv_gates import SparseConvBase
from vidseg_spvos.decoder import Decoder
from vidseg_spvos.encoders import KeyEncoder, ValueEncoder
from vidseg_spvos.memory import aggregate, l2_affinity, readout
from vidseg_spvos.sparsify import PART_OF_GROUP, GateType, check_groups, sparsify

PARTS = ("key_encoder", "value_encoder", "decoder")
PART_LABEL = {"key_encoder": "Q", "value_encoder": "M", "decoder": "D"}


class SpVOSNet(nn.Module):
    """STCN (key encoder, value encoder + fuser, L2 memory read, decoder) with optional sparse convolutions.

    Args:
        key_backbone: timm ResNet of the query encoder (``resnet50``).
        value_backbone: timm ResNet of the memory encoder (``resnet18``).
        pretrained: ``False``, ``True`` or a local weights file for both backbones (``key_pretrained`` /
            ``value_pretrained`` override per encoder).
        key_dim: ``C_k`` (64).
        value_dim: ``C_v`` (512).
        sparse_modules: module groups to sparsify (``Q``, ``Q_all``, ``D``, ``D_all``, ``M``; see
            :mod:`vidseg_spvos.sparsify`).
        gate: ``triple``, ``static``, ``residual`` or ``none`` (the non-sparse STCN baseline).
        tau: Gumbel-softmax temperature (SpVOS: 1).
        dense_above: inference compute fraction above which a sparse layer runs dense.
        decoder_channels: widths of the decoder's ``compress``, ``up_16_8`` and ``up_8_4`` outputs
            (STCN: 512, 256, 256; smaller for CPU runs).
    """

    def __init__(
        self,
        key_backbone: str = "resnet50",
        value_backbone: str = "resnet18",
        pretrained: bool | str = False,
        key_dim: int = 64,
        value_dim: int = 512,
        sparse_modules: Sequence[str] = ("Q", "D"),
        gate: GateType = "triple",
        tau: float = 1.0,
        dense_above: float = 0.25,
        key_pretrained: bool | str | None = None,
        value_pretrained: bool | str | None = None,
        decoder_channels: Sequence[int] = (512, 256, 256),
    ) -> None:
        super().__init__()
        key_pre = pretrained if key_pretrained is None else key_pretrained
        value_pre = pretrained if value_pretrained is None else value_pretrained
        self.key_encoder = KeyEncoder(key_backbone, key_pre, key_dim, value_dim)
        channels = self.key_encoder.out_channels
        self.value_encoder = ValueEncoder(channels["f16"], value_backbone, value_pre, value_dim)
        self.decoder = Decoder(2 * value_dim, channels["f8"], channels["f4"], *decoder_channels)
        self.sparse_modules = check_groups(sparse_modules)
        self.gate_type = gate
        self.sparse_layers: dict[str, SparseConvBase] = sparsify(self, self.sparse_modules, gate, tau, dense_above)
        self.sparse_parts = sorted({PART_OF_GROUP[g] for g in self.sparse_modules}) if self.sparse_layers else []

    # ------------------------------------------------------------------ sparse-layer state
    def layers_of(self, part: str | None = None) -> dict[str, SparseConvBase]:
        """Sparse layers (qualified name → layer), all or those of one part (``key_encoder``/``value_encoder``/``decoder``)."""
        return {n: m for n, m in self.sparse_layers.items() if part is None or n.startswith(part + ".")}

    def reset_state(self, parts: Sequence[str] = PARTS) -> None:
        """Forget the previous frame in the sparse layers of ``parts`` (start of every video / clip)."""
        for part in parts:
            for layer in self.layers_of(part).values():
                layer.reset()

    @contextmanager
    def dense(self, enabled: bool = True) -> Iterator[None]:
        """Run every sparse layer densely inside the block (a no-op when ``enabled`` is False)."""
        with ExitStack() as stack:
            if enabled:
                for layer in self.sparse_layers.values():
                    stack.enter_context(layer.dense())
            yield

    def clear_gates(self) -> None:
        """Drop the gate decisions kept from the last sparse frame (call before each frame)."""
        for layer in self.sparse_layers.values():
            layer.last_gate = None

    def gates(self) -> dict[str, torch.Tensor]:
        """Gate decisions of the layers that ran sparsely since :meth:`clear_gates` (straight-through tensors)."""
        return {n: m.last_gate for n, m in self.sparse_layers.items() if m.last_gate is not None}

    # ------------------------------------------------------------------ STCN steps
    def encode_key(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Query encoder on one frame per sample: ``frames (B, 3, H, W)`` → ``f4, f8, f16, k16, v16``."""
        return self.key_encoder(frames)

    def encode_value(self, frames: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Memory encoder for every object.

        Args:
            frames: ``(B, 3, H, W)``; key_f16: ``(B, C16, H/16, W/16)``.
            masks: ``(B, K, H, W)`` soft or hard object masks; each object's "others" channel is the sum of the
                other objects' masks (summed as STCN's ``eval_network.py``, not as total − own, which rounds).

        Returns:
            ``(B, K, C_v, H/16, W/16)``; objects are run as one batch of ``B·K`` (the value encoder's
            sparse state therefore follows ``(B, K)``).
        """
        bsz, num_obj = masks.shape[:2]
        others = torch.stack([masks[:, [j for j in range(num_obj) if j != i]].sum(1) for i in range(num_obj)], 1)
        rep = lambda t: t[:, None].expand(-1, num_obj, *t.shape[1:]).reshape(bsz * num_obj, *t.shape[1:])  # noqa: E731
        values = self.value_encoder(rep(frames), masks.reshape(-1, 1, *masks.shape[2:]),
                                    others.reshape(-1, 1, *masks.shape[2:]), rep(key_f16))
        return values.view(bsz, num_obj, *values.shape[1:])

    def read_memory(self, feats: dict[str, torch.Tensor], mem_keys: torch.Tensor, mem_values: torch.Tensor,
                    top_k: int | None = None) -> torch.Tensor:
        """Memory readout ⊕ query value for every object.

        Args:
            feats: :meth:`encode_key` output of the query frame.
            mem_keys: ``(B, C_k, T, h, w)``; mem_values: ``(B, K, C_v, T, h, w)``.
            top_k: memory top-k (inference only; STCN 20).

        Returns:
            ``(B, K, 2·C_v, h, w)``.
        """
        return readout(l2_affinity(mem_keys, feats["k16"], top_k), mem_values, feats["v16"])

    def decode(self, feats: dict[str, torch.Tensor], x16: torch.Tensor,
               selector: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode every object (one batch of ``B·K``) and aggregate.

        Args:
            feats: :meth:`encode_key` output (``f8``, ``f4`` skips).
            x16: ``(B, K, 2·C_v, h, w)`` from :meth:`read_memory`.
            selector: ``(B, K)`` 1 for real objects, 0 for batch padding (STCN's ``selector``).

        Returns:
            ``logits (B, K+1, H, W)`` over {bg, objects}; ``prob (B, K, H, W)`` = ``softmax(logits)[:, 1:]``
            (what STCN encodes as the next memory).
        """
        bsz, num_obj = x16.shape[:2]
        rep = lambda t: t[:, None].expand(-1, num_obj, *t.shape[1:]).reshape(bsz * num_obj, *t.shape[1:])  # noqa: E731
        logits = self.decoder(x16.flatten(0, 1), rep(feats["f8"]), rep(feats["f4"]))
        prob = torch.sigmoid(logits.view(bsz, num_obj, *logits.shape[-2:]))
        if selector is not None:
            prob = prob * selector[:, :, None, None].to(prob.dtype)
        logits = aggregate(prob)
        return logits, torch.softmax(logits, dim=1)[:, 1:]

    def segment(self, feats: dict[str, torch.Tensor], mem_keys: torch.Tensor, mem_values: torch.Tensor,
                selector: torch.Tensor | None = None, top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`read_memory` then :meth:`decode` (same shapes)."""
        return self.decode(feats, self.read_memory(feats, mem_keys, mem_values, top_k), selector)
