"""The shared DETR-family FFN block: formula, parameter names and creation order, flat registration."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidseg_common.models.ffn import FFN


def test_ffn_formula_and_shape() -> None:
    torch.manual_seed(0)
    ffn = FFN(8, 16, dropout=0.5).eval()
    x = torch.randn(2, 3, 5, 8)
    y = ffn(x)
    assert y.shape == x.shape
    hidden = F.relu(x @ ffn.linear1.weight.T + ffn.linear1.bias)
    expected = F.layer_norm(x + hidden @ ffn.linear2.weight.T + ffn.linear2.bias, (8,), ffn.norm.weight, ffn.norm.bias)
    torch.testing.assert_close(y, expected)
    ffn.train()
    assert not torch.equal(ffn(x), y)  # dropout is active in training


def test_ffn_names_and_creation_order() -> None:
    """Checkpoint keys ``linear1``, ``linear2``, ``norm``; a fixed seed draws linear1 then linear2."""
    torch.manual_seed(0)
    ffn = FFN(8, 16, dropout=0.1)
    torch.manual_seed(0)
    linear1, linear2 = nn.Linear(8, 16), nn.Linear(16, 8)
    assert list(ffn.state_dict()) == ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                                      "norm.weight", "norm.bias"]
    assert torch.equal(ffn.linear1.weight, linear1.weight) and torch.equal(ffn.linear2.bias, linear2.bias)


class _FlatOwner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(8)
        FFN(8, 16, 0.5).register_flat(self, "linear1", "dropout2", "linear2", "dropout3", "norm2")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.norm1(x))


def test_register_flat_keeps_flat_keys_and_shares_layers() -> None:
    torch.manual_seed(0)
    owner = _FlatOwner()
    assert list(owner.state_dict()) == ["norm1.weight", "norm1.bias", "linear1.weight", "linear1.bias",
                                        "linear2.weight", "linear2.bias", "norm2.weight", "norm2.bias"]
    assert [name for name, _ in owner.named_children()] == ["norm1", "linear1", "dropout2", "linear2", "dropout3",
                                                            "norm2"]
    assert owner.ffn.linear1 is owner.linear1 and owner.ffn.norm is owner.norm2
    x = torch.randn(4, 8)
    owner.eval()  # reaches the FFN's dropouts through the flat names
    assert not owner.ffn.dropout1.training
    torch.testing.assert_close(owner(x), owner.ffn(owner.norm1(x)))
    clone = copy.deepcopy(owner)  # the encoder stacks deep copies of one layer
    assert clone.ffn.linear1 is clone.linear1 and clone.linear1 is not owner.linear1
    with torch.no_grad():
        clone.linear2.bias.add_(1.0)
    assert not torch.equal(clone(x), owner(x))


@pytest.mark.skipif(importlib.util.find_spec("vidseg_seqformer") is None, reason="vidseg-seqformer is not installed")
def test_seqformer_encoder_layer_keeps_deformable_detr_keys() -> None:
    from vidseg_seqformer.encoder import DeformableEncoderLayer

    keys = [k for k in DeformableEncoderLayer(32, 64, 0.0, 1, 4, 2).state_dict() if not k.startswith("self_attn.")]
    assert keys == ["norm1.weight", "norm1.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                    "norm2.weight", "norm2.bias"]
