"""TimmBackbone: stride-named outputs, dilation, freezing, local pretrained weights, extra timm options."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from vidseg_common.errors import ConfigError
from vidseg_common.models.backbone import TimmBackbone


def test_resnet_outputs_are_named_by_stride() -> None:
    backbone = TimmBackbone("resnet18")
    features = backbone(torch.rand(2, 3, 64, 96))
    assert list(features) == ["f4", "f8", "f16", "f32"]
    assert backbone.out_channels == {"f4": 64, "f8": 128, "f16": 256, "f32": 512}
    for name, feature in features.items():
        stride = backbone.out_strides[name]
        assert feature.shape == (2, backbone.out_channels[name], 64 // stride, 96 // stride)


def test_dilated_backbone_never_mislabels_strides() -> None:
    backbone = TimmBackbone("resnet18", output_stride=8)
    features = backbone(torch.rand(1, 3, 64, 64))
    assert list(features) == ["f4", "f8", "f8_res4", "f8_res5"]
    assert all(f.shape[-1] == 64 // backbone.out_strides[n] for n, f in features.items())


def test_frozen_patterns_and_local_weights(tmp_path: Path) -> None:
    reference = timm.create_model("resnet18", pretrained=False)
    with torch.no_grad():
        reference.conv1.weight.normal_()
    weights = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), weights)
    backbone = TimmBackbone("resnet18", pretrained=str(weights), frozen=["^conv1", "^bn1", "^layer1"])
    assert torch.equal(backbone.body.conv1.weight, reference.conv1.weight)
    frozen = {n for n, p in backbone.body.named_parameters() if not p.requires_grad}
    assert "conv1.weight" in frozen and "layer1.0.conv1.weight" in frozen
    assert "layer2.0.conv1.weight" not in frozen


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="output_stride"):
        TimmBackbone("resnet18", output_stride=4)
    with pytest.raises(ConfigError, match="not found"):
        TimmBackbone("resnet18", pretrained=str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="out_indices"):
        TimmBackbone("resnet18", timm_kwargs={"out_indices": (1,)})
    with pytest.raises(ConfigError, match="resnet18"):  # a ResNet has no dynamic input size option
        TimmBackbone("resnet18", timm_kwargs={"dynamic_img_size": True})


def test_timm_kwargs_reach_timm() -> None:
    """``timm_kwargs`` go to ``timm.create_model``: a Swin built for 224 takes a 96×160 input only with them."""
    name = "swin_tiny_patch4_window7_224"
    plain = TimmBackbone(name, out_indices=(1, 2, 3))
    with pytest.raises((AssertionError, RuntimeError)):
        plain(torch.rand(1, 3, 96, 160))
    dynamic = TimmBackbone(name, out_indices=(1, 2, 3), timm_kwargs={"dynamic_img_size": True})
    features = dynamic(torch.rand(1, 3, 96, 160))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "f8": (1, 192, 12, 20), "f16": (1, 384, 6, 10), "f32": (1, 768, 3, 5)}
    assert TimmBackbone("resnet18", timm_kwargs={"drop_path_rate": 0.1}).body.layer4[-1].drop_path.drop_prob == pytest.approx(0.1)


def test_torchvision_imagenet_weights_load_with_an_account(tmp_path: Path) -> None:
    """A torchvision V1 ResNet ``.pth`` (what the papers started from) into a timm feature body stopping at res4:
    every tensor is placed (same values, same features), the classifier and res5 are dropped with their reason."""
    import torchvision

    from vidseg_common.weights import WeightsError

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    backbone = TimmBackbone("resnet18.tv_in1k", out_indices=(1, 2, 3), pretrained=str(tmp_path / "resnet18-f37072fd.pth"))
    conversion = backbone.load_imagenet(tmp_path / "resnet18-f37072fd.pth")
    assert set(conversion.dropped) == {k for k in reference.state_dict() if k.startswith(("fc.", "layer4."))}
    assert not conversion.fresh and len(conversion.mapped) == len(backbone.body.state_dict())
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        x = reference.maxpool(reference.relu(reference.bn1(reference.conv1(image))))
        f4 = reference.layer1(x)
        f16 = reference.layer3(reference.layer2(f4))
        features = backbone.eval()(image)
    assert torch.allclose(features["f4"], f4, atol=1e-6) and torch.allclose(features["f16"], f16, atol=1e-5)

    four = TimmBackbone("resnet18", in_chans=4, pretrained=str(tmp_path / "resnet18-f37072fd.pth"))
    assert torch.equal(four.body.conv1.weight[:, :3], reference.conv1.weight)
    assert not four.body.conv1.weight[:, 3].any()  # the extra (mask) channel starts at zero, as STCN's

    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(WeightsError, match=r"resnet34.pth: .*no place in the model: layer1.2"):
        TimmBackbone("resnet18", pretrained=str(tmp_path / "resnet34.pth"))
