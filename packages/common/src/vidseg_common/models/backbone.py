"""``TimmBackbone``: any timm model as a multi-scale feature extractor with stride-named outputs.

Every paper starts from an ImageNet CNN (ResNet-18/50/101, ResNeXt, Swin): the backbone is chosen by
its timm name, pretrained weights come from timm when online or from a local file, never required.
Outputs are a dict keyed by stride, ``{"f4": (B, C4, H/4, W/4), "f8": ..., "f16": ..., "f32": ...}``;
when dilation makes strides repeat (``output_stride=8``: res3–res5 all at stride 8), the first keeps
``f8`` and the later ones take their stage name as well (``f8_res4``, ``f8_res5``), so no key lies
about its stride.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from vidseg_common.errors import ConfigError
from vidseg_common.weights import Conversion, WeightRules, convert, read_checkpoint

_OWN_OPTIONS = {"features_only", "out_indices", "in_chans", "output_stride", "img_size", "pretrained",
                "pretrained_cfg_overlay"}


class TimmBackbone(nn.Module):
    """Multi-scale features from a timm model.

    Args:
        name: timm model name (``resnet50``, ``resnet101``, ``resnext101_32x8d``, ``swin_large_patch4_window12_384`` …).
        out_indices: timm feature indices to return (for ResNets 1..4 = res2..res5 at strides 4..32).
        pretrained: ``False``; ``True`` (timm download of the name's weights, e.g. ``resnet50.tv_in1k`` = torchvision's
            V1 ImageNet weights the papers started from); or a local ImageNet checkpoint of the same architecture
            (torchvision or timm keys, any format of :func:`~vidseg_common.weights.read_checkpoint`), loaded by
            :meth:`load_imagenet` with every key accounted for.
        output_stride: 32 (default), 16 or 8 (dilated last stages, DeepLab/PSPNet style).
        in_chans: input channels (timm adapts pretrained first-layer weights when ≠ 3).
        frozen: regular expressions; parameters whose names match are frozen (``["^conv1", "^bn1", "^layer1"]``
            freezes the stem and res2, the Deformable DETR recipe).
        img_size: input size for models that need it at construction (Swin); ``None`` otherwise.
        timm_kwargs: further keyword arguments for ``timm.create_model`` (``{"dynamic_img_size": True}`` lets a
            Swin take any input size, ``{"drop_path_rate": 0.2}``…); the options this class sets itself are refused.
    """

    def __init__(
        self,
        name: str = "resnet50",
        out_indices: Sequence[int] = (1, 2, 3, 4),
        pretrained: bool | str = False,
        output_stride: int = 32,
        in_chans: int = 3,
        frozen: Sequence[str] = (),
        img_size: int | None = None,
        timm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ConfigError(f"backbone output_stride must be 8, 16 or 32, got {output_stride}")
        kwargs: dict = {"features_only": True, "out_indices": tuple(out_indices), "in_chans": in_chans}
        if output_stride != 32:
            kwargs["output_stride"] = output_stride
        if img_size is not None:
            kwargs["img_size"] = img_size
        clash = sorted(set(timm_kwargs or {}) & (set(kwargs) | _OWN_OPTIONS))
        if clash:
            raise ConfigError(f"backbone timm_kwargs {clash} are set through TimmBackbone's own arguments")
        kwargs.update(timm_kwargs or {})
        path = Path(os.path.expanduser(pretrained)) if isinstance(pretrained, str) and pretrained else None
        if path is not None and not path.is_file():
            raise ConfigError(f"backbone pretrained weights file not found: {path}")
        try:
            self.body = timm.create_model(name, pretrained=path is None and bool(pretrained), **kwargs)
        except (RuntimeError, TypeError) as err:  # TypeError: a timm_kwargs option this model does not take
            raise ConfigError(f"backbone {name!r}: {err}") from err
        info = self.body.feature_info
        self.channels: list[int] = list(info.channels())
        self.strides: list[int] = list(info.reduction())
        stages = [module.split(".")[-1] for module in info.module_name()]
        self.names: list[str] = _stride_names(self.strides, stages)
        self.channels_last_output = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        if path is not None:
            self.load_imagenet(path)
        patterns = [re.compile(pattern) for pattern in frozen]
        for param_name, param in self.body.named_parameters():
            if any(p.search(param_name) for p in patterns):
                param.requires_grad_(False)

    def load_imagenet(self, path: str | os.PathLike[str]) -> Conversion:
        """Load an ImageNet classification checkpoint of this architecture into the feature body, all or nothing.

        Source modules the body does not have (the classifier, stages after the last feature output) are dropped
        with that reason; extra input channels (``in_chans > 3``) of the first convolution start at zero, as STCN's
        4-channel value encoder does. Any other difference (a key missing or of another shape) is a
        :class:`~vidseg_common.weights.WeightsError` naming the file and the keys.
        """
        checkpoint = read_checkpoint(path)
        source, target = dict(checkpoint.state_dict), self.body.state_dict()
        for key, value in target.items():  # the stem convolution: (C, in_chans, k, k) here, (C, 3, k, k) in the file
            if value.ndim == 4 and key in source and source[key].shape[1] == 3 < value.shape[1]:
                extra = value.shape[1] - 3
                source[key] = torch.cat([source[key], source[key].new_zeros(value.shape[0], extra, *value.shape[2:])], 1)
        unused = sorted({k.split(".")[0] for k in source} - {k.split(".")[0] for k in target})
        rules = WeightRules("imagenet", "an ImageNet checkpoint of the same architecture", passthrough=True,
                            drop={rf"^{re.escape(m)}\.": "not part of the feature backbone (classifier head or a "
                                  "stage after the last feature output)" for m in unused})
        state, conversion = convert(source, target, rules, checkpoint.path)
        self.body.load_state_dict(state, strict=True)
        return conversion

    @property
    def out_channels(self) -> dict[str, int]:
        return dict(zip(self.names, self.channels))

    @property
    def out_strides(self) -> dict[str, int]:
        return dict(zip(self.names, self.strides))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images (N, C_in, H, W)`` → ``{"f4": (N, C, H/4, W/4), ...}`` (channels-first)."""
        features = self.body(images)
        if self.channels_last_output:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        return dict(zip(self.names, features))


def _stride_names(strides: Sequence[int], stages: Sequence[str]) -> list[str]:
    """``f{stride}`` for the first output at each stride, ``f{stride}_{stage}`` for later ones."""
    seen: set[int] = set()
    names = []
    for stride, stage in zip(strides, stages):
        names.append(f"f{stride}" if stride not in seen else f"f{stride}_{_stage_name(stage)}")
        seen.add(stride)
    return names


def _stage_name(module_name: str) -> str:
    match = re.fullmatch(r"layer(\d+)", module_name)
    return f"res{int(match.group(1)) + 1}" if match else module_name.replace(".", "_")
