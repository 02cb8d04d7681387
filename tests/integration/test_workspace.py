"""The monorepo's conventions hold for every package (see docs/architecture.md, "How to add a paper")."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
PAPERS = [p for p in PACKAGE_DIRS if p.name != "common"]


def _load(path: Path) -> dict:
    return tomllib.loads(path.read_text())


@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=lambda p: p.name)
def test_package_follows_template(package_dir: Path) -> None:
    project = _load(package_dir / "pyproject.toml")
    name = package_dir.name
    assert project["project"]["name"] == f"vidseg-{name}"
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [f"src/vidseg_{name}"]
    assert (package_dir / "src" / f"vidseg_{name}" / "__init__.py").is_file()
    if name != "common":
        assert project["project"]["scripts"][f"vidseg-{name}"] == f"vidseg_{name}.cli:main"
        assert any(dep.startswith("vidseg-common") for dep in project["project"]["dependencies"])
        assert not any(
            dep.startswith("vidseg-") and not dep.startswith("vidseg-common") for dep in project["project"]["dependencies"]
        ), "paper packages must not depend on each other"


def test_import_linter_covers_every_package() -> None:
    config = _load(ROOT / "pyproject.toml")["tool"]["importlinter"]
    roots = set(config["root_packages"])
    assert {f"vidseg_{p.name}" for p in PACKAGE_DIRS} <= roots
    contracts = config["contracts"]
    forbidden = next(c for c in contracts if c["source_modules"] == ["vidseg_common"])
    assert {f"vidseg_{p.name}" for p in PAPERS} <= set(forbidden["forbidden_modules"])
    if len(PAPERS) >= 2:
        independence = [c for c in contracts if c["type"] == "independence"]
        assert independence and {f"vidseg_{p.name}" for p in PAPERS} <= set(independence[0]["modules"])
