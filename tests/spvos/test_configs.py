"""Every experiments/spvos YAML names real SpVOSModule options with valid values; the paper configs parse."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from vidseg_common.engine.module import VidSegModule
from vidseg_spvos.cli import main
from vidseg_spvos.module import SpVOSModule
from vidseg_spvos.processing import check_strategy
from vidseg_spvos.sparsify import GATES, check_groups

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "spvos").glob("*.yaml"))
OPTIONS = set(inspect.signature(SpVOSModule.__init__).parameters) | set(inspect.signature(VidSegModule.__init__).parameters)
BASE = yaml.safe_load((CONFIGS[0].parent / "davis17.yaml").read_text())["model"]


def test_one_config_per_table_row() -> None:
    names = {p.stem for p in CONFIGS}
    assert {"synthetic", "davis17", "ytvos18"} <= names
    assert sum(n.startswith("table1_") for n in names) == 4  # Table I: 4 methods
    assert sum(n.startswith("table2_") for n in names) == 12  # Table II: 3 methods × 4 non-mixed strategies
    assert sum(n.startswith("table3_") for n in names) == 9  # Table III: Q / D rows ×3 methods + 3 dagger rows
    assert sum(n.startswith("table5_") for n in names) == 7  # Table V: 7 temperatures


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_model_options_are_valid(path: Path) -> None:
    model = yaml.safe_load(path.read_text()).get("model", {})
    assert set(model) <= OPTIONS, set(model) - OPTIONS
    merged = {**BASE, **model}
    assert merged["gate"] in (*GATES, "none")
    check_groups(merged["sparse_modules"])
    check_strategy(merged["strategy"], merged["sparse_modules"])
    assert merged["tau"] > 0


def test_paper_configs_parse_with_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    root = CONFIGS[0].parent
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--print_config", "-c", str(root / "davis17.yaml"), "-c", str(root / "ytvos18.yaml"),
              "-c", str(root / "table2_triple_fully_wM.yaml")])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["sparse_modules"] == ["Q", "D", "M"] and config["model"]["strategy"] == "fully"
    assert config["model"]["mem_every"] == 4 and config["data"]["init_args"]["dataset"] == "youtube_vos"
    assert config["model"]["optimizer"]["lr"] == 2.0e-5 and config["model"]["scheduler"]["cosine_start_step"] == 32000
