"""Which convolutions SpVOS sparsifies, and the swap to sparse layers (SpVOS §III-B/C, Tables I–III; docs/reference/vos.md §2.6).

Module groups (names of the ``sparse_modules`` option):

* ``Q``: the three convolutions of every ResNet bottleneck (basic-block: two) in layer1–3 of the query encoder;
  the stem and the shortcut (downsample) convolutions stay dense (paper §III-B, following dynconv [21]).
* ``Q_all`` (Table III "Q†"): ``Q`` plus the stem conv, the shortcut convs, ``key_proj`` and ``key_comp``.
* ``D``: ``conv1``/``conv2`` of the decoder's three ResBlocks (``compress``, ``up_16_8.out_conv``, ``up_8_4.out_conv``).
* ``D_all`` (Table III "D†"): ``D`` plus the ResBlock shortcut convs, the ``skip_conv`` of both upsampling stages and ``pred``.
* ``M`` (Table II "w/ M"): the block convolutions of the memory encoder's ResNet layer1–3 and of the fuser's two
  ResBlocks.

This selection with the gate design of :class:`~vidseg_common.ops.triple_sparse_conv.TripleSparseConv2d`
reproduces every "Params" entry of Tables I–III (tested). The triple layers are that class itself (its
inference path works only on the computed positions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from torch import nn

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv_baselines import ResidualSparseConv2d, StaticSparseConv2d
from vidseg_common.ops.sparse_conv_gates import SparseConvBase
from vidseg_common.ops.triple_sparse_conv import TripleSparseConv2d

GateType = Literal["triple", "static", "residual", "none"]
GATES: dict[str, type[SparseConvBase]] = {
    "triple": TripleSparseConv2d, "static": StaticSparseConv2d, "residual": ResidualSparseConv2d,
}
MODULE_GROUPS = ("Q", "Q_all", "D", "D_all", "M")
PART_OF_GROUP = {"Q": "key_encoder", "Q_all": "key_encoder", "D": "decoder", "D_all": "decoder", "M": "value_encoder"}

_BLOCK_CONV = r"backbone\.body\.layer[123]\.\d+\.conv[123]$"
_PATTERNS: dict[str, list[str]] = {
    "Q": [r"^key_encoder\." + _BLOCK_CONV],
    "Q_all": [r"^key_encoder\." + _BLOCK_CONV, r"^key_encoder\.backbone\.body\.conv1$",
              r"^key_encoder\.backbone\.body\.layer[123]\.\d+\.downsample\.0$",
              r"^key_encoder\.key_proj\.key_proj$", r"^key_encoder\.key_comp$"],
    "D": [r"^decoder\.(compress|up_16_8\.out_conv|up_8_4\.out_conv)\.conv[12]$"],
    "D_all": [r"^decoder\.(compress|up_16_8\.out_conv|up_8_4\.out_conv)\.(conv[12]|downsample)$",
              r"^decoder\.up_(16_8|8_4)\.skip_conv$", r"^decoder\.pred$"],
    "M": [r"^value_encoder\." + _BLOCK_CONV, r"^value_encoder\.fuser\.block[12]\.conv[12]$"],
}


def check_groups(groups: Iterable[str]) -> list[str]:
    """Validated, de-duplicated group names (raises :class:`ConfigError` naming the bad one)."""
    out: list[str] = []
    for group in groups:
        if group not in MODULE_GROUPS:
            raise ConfigError(f"model.sparse_modules: {group!r} is not one of {MODULE_GROUPS}")
        if group not in out:
            out.append(group)
    return out


def sparse_conv_names(net: nn.Module, groups: Sequence[str]) -> list[str]:
    """Qualified names of the ``nn.Conv2d`` modules of ``net`` selected by ``groups``, in module order."""
    patterns = [re.compile(p) for g in check_groups(groups) for p in _PATTERNS[g]]
    return [name for name, module in net.named_modules()
            if isinstance(module, nn.Conv2d) and any(p.search(name) for p in patterns)]


def sparsify(net: nn.Module, groups: Sequence[str], gate: GateType = "triple", tau: float = 1.0,
             dense_above: float = 0.25) -> dict[str, SparseConvBase]:
    """Replace the selected convolutions of ``net`` in place by sparse layers with the same weights.

    Args:
        net: the network (an :class:`~vidseg_spvos.model.STCN`).
        groups: module groups (see the module docstring).
        gate: ``triple`` (SpVOS), ``static`` (dynconv), ``residual`` (skip-convolution) or ``none``.
        tau: Gumbel temperature (SpVOS uses one τ for every gate type).
        dense_above: inference compute fraction above which the layer runs dense (see ``SparseConvBase``).

    Returns:
        ``{qualified name: sparse layer}`` in module order (empty for ``gate="none"``).
    """
    if gate == "none":
        return {}
    if gate not in GATES:
        raise ConfigError(f"model.gate={gate!r} is not one of triple, static, residual, none")
    cls = GATES[gate]
    layers: dict[str, SparseConvBase] = {}
    for name in sparse_conv_names(net, groups):
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name)
        conv = getattr(parent, child) if not child.isdigit() else parent[int(child)]
        layer = cls.from_conv(conv, tau=tau, dense_above=dense_above)
        if child.isdigit():
            parent[int(child)] = layer
        else:
            setattr(parent, child, layer)
        layers[name] = layer
    return layers
