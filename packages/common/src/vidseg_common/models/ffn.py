"""``FFN``: the post-norm feed-forward block of the DETR-family transformers (DETR, Deformable DETR, VisTR,
Deformable VisTR, SeqFormer).

``y = LayerNorm(x + dropout2(linear2(dropout1(relu(linear1(x))))))``

Parameter names are ``linear1.*``, ``linear2.*`` and ``norm.*``; the layers are created in the order
``linear1``, ``linear2``, ``norm`` (so a fixed seed initialises them as the per-paper blocks it replaced).
Deformable DETR's encoder layer keeps the FFN's layers on the layer itself (``linear1``, ``dropout2``,
``linear2``, ``dropout3``, ``norm2``): :meth:`FFN.register_flat` registers them under such names, so
checkpoint keys and parameter order stay those of the original code.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class FFN(nn.Module):
    """Post-norm feed-forward block ``norm(x + dropout2(linear2(dropout1(relu(linear1(x))))))``.

    Args:
        d_model: channels C of the input and output.
        d_ffn: hidden width.
        dropout: dropout rate (after the activation and after ``linear2``).

    Shapes:
        ``x (..., C)`` → ``(..., C)``.
    """

    def __init__(self, d_model: int, d_ffn: int, dropout: float) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        """``x (..., C)`` → ``(..., C)``."""
        return self.norm(x + self.dropout2(self.linear2(self.dropout1(F.relu(self.linear1(x))))))

    def register_flat(
        self, owner: nn.Module, linear1: str, dropout1: str, linear2: str, dropout2: str, norm: str
    ) -> None:
        """Register this block's layers directly on ``owner`` under the given names, in forward order.

        For layers whose checkpoints store the FFN flat (Deformable DETR's encoder layer: ``linear1``,
        ``dropout2``, ``linear2``, ``dropout3``, ``norm2``). The block itself is kept as a plain attribute
        ``owner.ffn`` (not a sub-module), so its parameters are registered once, under the flat names; call
        ``owner.ffn(x)``. ``train()``/``eval()``, ``.to()`` and ``copy.deepcopy`` act on the shared layers.
        """
        for name, module in ((linear1, self.linear1), (dropout1, self.dropout1), (linear2, self.linear2),
                             (dropout2, self.dropout2), (norm, self.norm)):
            owner.add_module(name, module)
        owner.__dict__["ffn"] = self
