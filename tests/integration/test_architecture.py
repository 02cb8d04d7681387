"""The shape every paper package keeps: a small LightningModule on a task module, and no reach into the datamodule.

Evaluation, prediction and the undoing of the data transform belong to the task modules of ``vidseg_common.tasks``;
what the transform did travels in the batch ``meta``. A paper module therefore never reads ``trainer.datamodule``
(only a Lightning ``Callback`` may, Lightning's place for trainer state).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from vidseg_common.tasks import TaskModule

REPO = Path(__file__).resolve().parents[2]
PAPERS = {"sstvos": "SSTVOSModule", "spvos": "SpVOSModule", "defvistr": "DefVisTRModule",
          "seqformer": "SeqFormerModule", "stt": "STTModule"}
MAX_MODULE_LINES = 130


@pytest.mark.parametrize("paper", PAPERS)
def test_module_is_small_and_on_a_task_module(paper: str) -> None:
    path = REPO / f"packages/{paper}/src/vidseg_{paper}/module.py"
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES, f"{path} is over {MAX_MODULE_LINES} lines"
    module_class = getattr(importlib.import_module(f"vidseg_{paper}.module"), PAPERS[paper])
    assert issubclass(module_class, TaskModule)
    for hook in ("validation_step", "test_step", "predict_step", "on_validation_epoch_end"):
        assert hook not in vars(module_class), f"{module_class.__name__} overrides {hook}: the task module owns it"


def _datamodule_reads(path: Path) -> list[str]:
    """``name:line`` of every ``<x>.datamodule`` (or ``"datamodule"`` string) outside a class deriving from ``Callback``."""
    found: list[str] = []

    def visit(node: ast.AST, in_callback: bool) -> None:
        if isinstance(node, ast.ClassDef):
            in_callback = any(getattr(base, "id", getattr(base, "attr", "")) == "Callback" for base in node.bases)
        if isinstance(node, ast.Attribute) and node.attr == "datamodule" and not in_callback:
            found.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Constant) and node.value == "datamodule" and not in_callback:
            found.append(f"{path.name}:{node.lineno} (getattr)")
        for child in ast.iter_child_nodes(node):
            visit(child, in_callback)

    visit(ast.parse(path.read_text()), False)
    return found


def test_paper_code_never_reads_the_datamodule() -> None:
    files = sorted(p for paper in PAPERS for p in (REPO / f"packages/{paper}/src").rglob("*.py"))
    assert len(files) > 40
    assert [hit for path in files for hit in _datamodule_reads(path)] == []


def test_the_check_sees_a_datamodule_read(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("class M:\n    def f(self):\n        return self.trainer.datamodule\n"
                      "class C(Callback):\n    def g(self, trainer):\n        return trainer.datamodule\n")
    assert _datamodule_reads(source) == ["m.py:3"]
