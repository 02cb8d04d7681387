"""``vidseg_common.weights``: safe reading of every format, strict renaming, all-or-nothing loads."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from vidseg_common.weights import IDENTITY, WeightRules, WeightsError, convert, load_weights, read_checkpoint


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.gate = nn.Linear(4, 3)  # new in our model: not in the "released" file
        self.head = nn.Linear(4, 2)


RELEASED = WeightRules(
    "toy", "a toy release: backbone under 'encoder.', no gate, an unused classifier",
    rename=((r"encoder\.(.*)", r"body.\1"), (r"cls\.(.*)", r"head.\1")),
    drop={r"^aux_head\.": "auxiliary head of the release, not in the paper's model"},
    fresh={r"^gate\.": "the gates are new (not in the release)"},
)


def _released(net: Net) -> dict[str, torch.Tensor]:
    sd = {}
    for key, value in net.state_dict().items():
        if key.startswith("body."):
            sd["encoder." + key[5:]] = torch.randn_like(value.float()).to(value.dtype)
        elif key.startswith("head."):
            sd["cls." + key[5:]] = torch.randn_like(value)
    sd["aux_head.weight"] = torch.randn(5, 4)
    return sd


def test_formats_read_the_same_state_dict(tmp_path: Path) -> None:
    sd = _released(Net())
    torch.save(sd, tmp_path / "bare.pth")
    torch.save({"model": sd, "epoch": 3}, tmp_path / "nested.pth")
    torch.save({"state_dict": sd, "hyper_parameters": {"lr": 1.0}, "epoch": 1}, tmp_path / "run.ckpt")
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "w.safetensors")
    kinds = {}
    for name in ("bare.pth", "nested.pth", "run.ckpt", "w.safetensors"):
        checkpoint = read_checkpoint(tmp_path / name)
        kinds[name] = checkpoint.kind
        assert checkpoint.state_dict.keys() == sd.keys()
        assert all(torch.equal(checkpoint.state_dict[k], sd[k]) for k in sd)
    assert kinds == {"bare.pth": "state_dict", "nested.pth": "state_dict", "run.ckpt": "lightning",
                     "w.safetensors": "safetensors"}
    assert read_checkpoint(tmp_path / "run.ckpt").hyper_parameters == {"lr": 1.0}


class Payload:
    """Unpickling an instance needs this class: code execution, refused by weights_only."""


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    torch.save(_released(Net()), tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    torch.save({"model": Payload()}, tmp_path / "code.pth")
    (tmp_path / "w.safetensors").write_bytes(b"not safetensors")
    torch.save({"a": 1}, tmp_path / "nontensor.pth")
    for name, message in (("truncated.pth", "truncated or corrupt"), ("code.pth", "code execution"),
                          ("w.safetensors", "safetensors"), ("nontensor.pth", "not tensors"), ("missing.pth", "not found")):
        with pytest.raises(WeightsError, match=message) as err:
            read_checkpoint(tmp_path / name)
        assert name in str(err.value)


def test_convert_accounts_for_every_key() -> None:
    net = Net()
    source = _released(net)
    state, conversion = convert(source, net.state_dict(), RELEASED)
    assert conversion.mapped["body.0.weight"] == "encoder.0.weight" and conversion.mapped["head.bias"] == "cls.bias"
    assert conversion.dropped == {"aux_head.weight": "auxiliary head of the release, not in the paper's model"}
    assert set(conversion.fresh) == {"gate.weight", "gate.bias"}
    assert len(conversion.mapped) + len(conversion.fresh) == len(net.state_dict())
    assert torch.equal(state["body.1.running_var"], source["encoder.1.running_var"])
    assert torch.equal(state["gate.weight"], net.state_dict()["gate.weight"])
    assert "mapped 9 tensors, dropped 1, fresh 2" in conversion.summary()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda sd: sd.__setitem__("cls.weight", torch.zeros(3, 4)), r"shape mismatches: cls.weight \(3, 4\) vs head.weight"),
    (lambda sd: sd.pop("encoder.0.bias"), "model keys missing from the file: body.0.bias"),
    (lambda sd: sd.__setitem__("decoder.x", torch.zeros(1)), "no place in the model: decoder.x"),
])
def test_convert_refuses_what_does_not_fit(edit, message: str) -> None:
    net = Net()
    source = _released(net)
    edit(source)
    with pytest.raises(WeightsError, match=message):
        convert(source, net.state_dict(), RELEASED, "rel.pth")


def test_load_is_all_or_nothing_and_detects_own_checkpoints(tmp_path: Path) -> None:
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    broken = _released(net)
    broken["cls.weight"] = torch.zeros(3, 4)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match="broken.pth: fits no known layout of Net"):
        load_weights(net, tmp_path / "broken.pth", [RELEASED])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched

    torch.save({"model": _released(net)}, tmp_path / "release.pth")
    conversion = load_weights(net, tmp_path / "release.pth", {"toy": RELEASED})
    assert len(conversion.fresh) == 2

    other = Net()
    torch.save({"state_dict": other.state_dict(), "hyper_parameters": {}}, tmp_path / "own.ckpt")
    conversion = load_weights(net, tmp_path / "own.ckpt", [RELEASED])
    assert not conversion.fresh and not conversion.dropped
    assert all(torch.equal(net.state_dict()[k], v) for k, v in other.state_dict().items())
    assert IDENTITY.target_key("body.0.weight") == "body.0.weight"


def test_other_models_checkpoint_is_refused(tmp_path: Path) -> None:
    torch.save(collections.OrderedDict(fc=torch.zeros(2, 2)), tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"other.pth: fits no known layout.*no place in the model: fc"):
        load_weights(Net(), tmp_path / "other.pth", [RELEASED])
