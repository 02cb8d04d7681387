"""BiSeNet18/34 split (docs/reference/vss.md §2.5): encoder = spatial + context path + FFM at stride 8 (256 ch), decoder = output head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from torch import nn

from vidseg_common.errors import ConfigError
from vidseg_stt.bisenet import BiSeNetDecoder, BiSeNetEncoder

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "stt"


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("depth", [18, 34])
def test_context_path_is_the_plain_resnet(depth: int) -> None:
    """The context path's backbone has exactly torchvision ResNet-{18,34}'s parameters without the classifier."""
    encoder = BiSeNetEncoder(f"resnet{depth}")
    reference = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    assert _count(encoder.context.body) == _count(reference) - _count(reference.fc)  # 11 176 512 / 21 284 672
    assert encoder.context.body.strides == [16, 32]  # ARMs on f16 and f32, no dilation (unlike PSPNet's OS 8)
    convs = [m for m in encoder.spatial.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1] and [c.kernel_size[0] for c in convs] == [7, 3, 3, 1]


@pytest.mark.parametrize("size", [(64, 96), (60, 100)])
def test_encoder_decoder_shapes(size: tuple[int, int]) -> None:
    encoder, decoder = BiSeNetEncoder("resnet18").eval(), BiSeNetDecoder(256, 19).eval()
    with torch.no_grad():
        feats_f8 = encoder(torch.randn(2, 3, *size))
        assert feats_f8.shape == (2, 256, -(-size[0] // 8), -(-size[1] // 8))
        assert decoder(feats_f8).shape == (2, 19, *feats_f8.shape[-2:])
    assert [m.out_channels for m in decoder.modules() if isinstance(m, nn.Conv2d)] == [256, 19]


def test_stt_bisenet_module(make_stt) -> None:
    """STT sits on the 256-channel FFM output (d = 64 after the d_t/4 reduction); the baseline has no STT."""
    module = make_stt(encoder="bisenet", backbone="resnet18").eval()
    assert module.stt is not None and module.stt.in_channels == 256 and module.stt.dim == 64
    frames = torch.randn(1, 4, 3, 40, 56)
    with torch.no_grad():
        assert module(frames).shape == (1, 5, 40, 56)
        cache: list = []
        for t in range(4):
            streamed = module.stream_step(frames[:, t], cache)
        torch.testing.assert_close(streamed, module(frames), rtol=1e-4, atol=1e-4)
    assert make_stt(encoder="bisenet", use_stt=False).stt is None
    with pytest.raises(ConfigError, match="encoder"):
        make_stt(encoder="deeplab")


@pytest.mark.parametrize(("name", "backbone"), [("cityscapes_bise18", "resnet18"), ("cityscapes_bise34", "resnet34")])
def test_bisenet_configs(name: str, backbone: str) -> None:
    model = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())["model"]
    assert model["encoder"] == "bisenet" and model["backbone"] == backbone and model["use_stt"] is True
    assert model["num_key_frames"] == 7 and (model["key_start"], model["key_end"], model["key_expansion"]) == (1, 5, 1)
