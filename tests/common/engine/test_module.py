"""VidSegModule: BN policies, optimizer construction, plain hyperparameters."""

from __future__ import annotations

import pytest
import torch
from tiny import TinyModule
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from vidseg_common.errors import ConfigError


def test_frozen_bn_replaces_backbone_bn_only() -> None:
    model = TinyModule(bn_mode="frozen")
    model.configure_model()
    assert isinstance(model.backbone.bn, FrozenBatchNorm2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules())
    names = {name for name, _ in model.named_parameters()}
    assert "backbone.bn.weight" not in names  # frozen statistics and affine are buffers now


def test_eval_bn_survives_train_mode() -> None:
    model = TinyModule(bn_mode="eval")
    model.train()
    assert model.training and not model.backbone.bn.training
    before = model.backbone.bn.running_mean.clone()
    model(torch.rand(2, 2, 3, 8, 8))
    assert torch.equal(before, model.backbone.bn.running_mean)


def test_train_bn_updates_statistics() -> None:
    model = TinyModule(bn_mode="train").train()
    before = model.backbone.bn.running_mean.clone()
    model(torch.rand(2, 2, 3, 8, 8))
    assert not torch.equal(before, model.backbone.bn.running_mean)


def test_hparams_are_plain_and_complete() -> None:
    model = TinyModule(optimizer={"name": "sgd", "lr": 0.5})
    assert model.hparams["optimizer"]["lr"] == 0.5 and model.hparams["optimizer"]["name"] == "sgd"
    assert model.hparams["scheduler"]["name"] == "constant"  # the default is recorded, not None


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="bn_mode"):
        TinyModule(bn_mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model.optimizer"):
        TinyModule(optimizer={"lr": 1.0, "learning_rate": 2.0})
    model = TinyModule(optimizer={"name": "rmsprop"})
    with pytest.raises(ConfigError, match="optimizer.name"):
        model.configure_optimizers()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_option_reaches_the_optimizer(name: str) -> None:
    """``optimizer.fused: true`` builds torch's fused update; a fused step equals the default one."""
    results = []
    for fused in (None, True):
        torch.manual_seed(0)
        model = TinyModule(optimizer={"name": name, "lr": 0.1, "fused": fused})
        optimizer = model.configure_optimizers()["optimizer"]
        assert optimizer.defaults["fused"] is fused
        model(torch.rand(2, 2, 3, 8, 8)).float().mean().backward()
        optimizer.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1])


def test_from_checkpoint_restores_module_with_weights_only(tmp_path) -> None:
    """``from_checkpoint`` rebuilds the module from its hyperparameters (BN policy applied) and loads the weights."""
    model = TinyModule(bn_mode="frozen", optimizer={"name": "sgd", "lr": 0.5})
    model.configure_model()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param))
    path = tmp_path / "m.ckpt"
    hparams = {**dict(model.hparams), "_instantiator": "lightning.pytorch.cli.instantiate_module"}
    torch.save({"hyper_parameters": hparams, "state_dict": model.state_dict()}, path)
    loaded = TinyModule.from_checkpoint(path)
    assert not loaded.training and isinstance(loaded.backbone.bn, FrozenBatchNorm2d)
    assert loaded.hparams["optimizer"]["lr"] == 0.5
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
