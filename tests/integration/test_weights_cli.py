"""Weights through the command lines: ``vidseg weights import`` and ``--model.init_weights``.

A file that does not fit — truncated, a pickle that needs code execution, another paper's checkpoint, a shape
mismatch — stops with one line naming the file, exit 2, and nothing is written or loaded. A file that fits is
converted with its account printed, and the converted file loads as the model's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from vidseg_common.tools.main import main as vidseg
from vidseg_common.weights import read_checkpoint

TINY = {"backbone": "test_resnet", "frozen_backbone": [], "num_classes": 5, "num_queries": 6, "hidden_dim": 32,
        "ffn_dim": 64, "dropout": 0.0, "num_encoder_layers": 1, "num_decoder_layers": 2, "num_heads": 4,
        "encoder_points": 2, "decoder_points": 2, "pretrained": False}


class Payload:
    """Unpickling this needs code: refused by ``weights_only=True``."""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"model": TINY}))
    return path


def _own_state(config: Path) -> dict[str, torch.Tensor]:
    from vidseg_common.tools.weights import build_model, model_classes

    return build_model(model_classes()["seqformer"], [config]).state_dict()


def test_import_converts_and_bad_files_exit_2(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(3)
    state = _own_state(config)
    torch.save({"model": state}, tmp_path / "own.pth")
    out = tmp_path / "converted.safetensors"
    assert vidseg(["weights", "import", "seqformer", str(tmp_path / "own.pth"), "--out", str(out), "-c", str(config)]) == 0
    assert "mapped" in capsys.readouterr().out
    converted = read_checkpoint(out).state_dict
    assert converted.keys() == state.keys() and all(torch.equal(converted[k], state[k]) for k in state)

    data = (tmp_path / "own.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 3])
    torch.save({"model": Payload()}, tmp_path / "code.pth")
    torch.save({k.replace("model.", "net.", 1): v for k, v in state.items()}, tmp_path / "other_paper.pth")
    shape = dict(state)
    shape["model.query_embed.weight"] = torch.zeros(7, shape["model.query_embed.weight"].shape[1])
    torch.save(shape, tmp_path / "shape.pth")
    for name in ("truncated.pth", "code.pth", "other_paper.pth", "shape.pth"):
        target = tmp_path / f"{name}.out.pth"
        assert vidseg(["weights", "import", "seqformer", str(tmp_path / name), "--out", str(target), "-c", str(config)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and name in err, err
        assert not target.exists()


def test_init_weights_loads_all_or_nothing(tmp_path: Path, config: Path) -> None:
    from vidseg_common.weights import WeightsError
    from vidseg_seqformer.module import SeqFormerModule

    torch.manual_seed(4)
    state = _own_state(config)
    torch.save(state, tmp_path / "start.pth")
    module = SeqFormerModule(**TINY, init_weights=str(tmp_path / "start.pth"))
    module.configure_model()
    assert all(torch.equal(module.state_dict()[k], v) for k, v in state.items())
    assert "init_weights" not in module.hparams  # a location, not a property of the trained model

    partial = {k: v for k, v in state.items() if not k.startswith("model.mask_head")}
    torch.save(partial, tmp_path / "partial.pth")
    fresh = SeqFormerModule(**TINY, init_weights=str(tmp_path / "partial.pth"))
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(WeightsError, match=r"partial.pth: .*missing from the file: model.mask_head"):
        fresh.configure_model()
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
