"""The paper configs: every YAML parses with the CLI on top of davis17.yaml, each ablation overlay sets the row of
Tables 4–6 it names, and the synthetic config stays on CPU-sized settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vidseg_sstvos.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "sstvos"
# overlay → model options it must produce (Tables 4–6 of the paper)
ROWS = {
    "table4_pe_none": {"positional_encoding": "none"}, "table4_pe_sinusoidal": {"positional_encoding": "sinusoidal"},
    "table5_tau1": {"history": 1}, "table5_tau2": {"history": 2}, "table5_tau3": {"history": 3},
    "table6_grid_1layer": {"attention": "grid", "num_encoder_layers": 1},
    "table6_grid_2layers": {"attention": "grid", "num_encoder_layers": 2},
    "table6_grid_3layers": {"attention": "grid", "num_encoder_layers": 3},
    "table6_local_2layers": {"attention": "local", "num_encoder_layers": 2},
    "table6_strided_2layers": {"attention": "strided", "num_encoder_layers": 2},
    "table6_local_strided_2layers": {"attention": "local_strided", "num_encoder_layers": 2},
}


def _printed(capsys, *configs: str) -> dict:
    repo = EXPERIMENTS.parents[1]
    args = ["fit", "-c", str(repo / "experiments/_base/trainer_gpu_ddp.yaml")]
    for name in configs:
        args += ["-c", str(EXPERIMENTS / f"{name}.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_every_overlay_is_a_table_row() -> None:
    assert sorted(p.stem for p in EXPERIMENTS.glob("table*.yaml")) == sorted(ROWS)
    for name, expected in ROWS.items():
        model = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())["model"]
        assert {k: model[k] for k in expected} == expected, name


def test_paper_configs_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    base = _printed(capsys, "davis17", "table6_local_strided_2layers")
    assert base["model"]["attention"] == "local_strided" and base["model"]["history"] == 3
    assert base["model"]["backbone"] == "resnet101" and base["model"]["hidden_dim"] == 128
    assert base["model"]["optimizer"]["lr"] == 0.01 and base["model"]["bn_mode"] == "frozen"
    assert base["trainer"]["strategy"] == "ddp" and base["trainer"]["max_steps"] == 25000
    assert base["data"]["init_args"]["protocol"] == "cfbi" and base["data"]["init_args"]["crop_size"] == [465, 465]
    printed = _printed(capsys, "davis17", "ytvos19")
    assert printed["data"]["init_args"]["dataset"] == "youtube_vos"
    assert printed["data"]["init_args"]["root"] == "data/YouTubeVOS/2019"
    assert printed["data"]["init_args"]["protocol"] == "cfbi" and printed["trainer"]["max_steps"] == 100000
    assert printed["model"]["eval_metric"] == "youtube_vos"


def test_synthetic_config_is_cpu_sized() -> None:
    options = yaml.safe_load((EXPERIMENTS / "synthetic.yaml").read_text())
    assert options["model"]["backbone"] == "resnet18" and options["model"]["pretrained"] is False
    assert options["data"]["init_args"]["synthetic"]["full_occlusion"] is True
