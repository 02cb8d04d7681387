"""Explicit BatchNorm policies: train normally, keep in eval mode, or freeze into ``FrozenBatchNorm2d``.

Detection/segmentation recipes with small per-GPU batches freeze the backbone's BN (DETR, Deformable
DETR, SeqFormer, VisTR, CFBI with ``FREEZE_BN``); video models trained with larger batches keep it
training (STCN). Making the choice a config value avoids the silent differences of ad-hoc freezing.
"""

from __future__ import annotations

from typing import Literal

from timm.layers import freeze_batch_norm_2d
from torch import nn

BNMode = Literal["train", "eval", "frozen"]
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d``/``SyncBatchNorm`` in ``module`` by timm's ``FrozenBatchNorm2d``.

    Returns the (possibly new) module; statistics and affine parameters become buffers, so they
    neither train nor appear in the optimizer.
    """
    return freeze_batch_norm_2d(module)


def set_batchnorm_eval(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode (running statistics fixed, affine trainable)."""
    for child in module.modules():
        if isinstance(child, _BN_TYPES):
            child.eval()


def count_batchnorm(module: nn.Module) -> int:
    """Number of (trainable-statistics) BatchNorm layers in ``module``."""
    return sum(isinstance(child, _BN_TYPES) for child in module.modules())
