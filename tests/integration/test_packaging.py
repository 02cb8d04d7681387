"""Must-show 5: every package builds a wheel that installs alone into a fresh virtual environment.

The fresh environment gets only the package, its declared dependencies and (for paper packages)
vidseg-common from the freshly built wheels. Third-party packages are not reinstalled per environment:
the declared requirements' closure is linked from this (constraints.txt-pinned) environment into a folder
that the fresh environments see through a ``.pth`` file, and pip installs with ``--no-index``, so a
dependency that is missing fails the install instead of being fetched silently.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))


def _third_party_requirements() -> list[str]:
    requirements: set[str] = set()
    for package_dir in PACKAGE_DIRS:
        project = tomllib.loads((package_dir / "pyproject.toml").read_text())["project"]
        requirements.update(dep for dep in project.get("dependencies", []) if not dep.startswith("vidseg-"))
    return sorted(requirements)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    for package_dir in PACKAGE_DIRS:
        _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(package_dir)])
    return dist


def _requirement_closure(requirements: list[str]) -> list[importlib.metadata.Distribution]:
    """Installed distributions needed by ``requirements``, transitively (markers and extras honoured)."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    pending = [(Requirement(req), "") for req in requirements]
    while pending:
        req, extra = pending.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        dist = importlib.metadata.distribution(req.name)  # a missing one is a broken main environment
        extras = sorted(req.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in seen:
            continue
        seen[key] = dist
        for sub in dist.requires or []:
            for wanted in ["", *extras]:
                pending.append((Requirement(sub), wanted))
    unique = {canonicalize_name(d.metadata["Name"]): d for d in seen.values()}
    return list(unique.values())


@pytest.fixture(scope="module")
def third_party_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The declared third-party requirements, transitively, as symlinks into this environment's site-packages.

    Reinstalling them (pip --target) would write a second multi-GB torch and filled CI's disk. Only the
    requirement closure is linked, so a package importing something it never declared (pytest, ruff, another
    vidseg package) still fails its ``--help`` below; ``.pth`` files and console scripts are not linked.
    """
    site = tmp_path_factory.mktemp("third_party_site")
    for dist in _requirement_closure(_third_party_requirements()):
        for file in dist.files or []:
            top = file.parts[0]
            if top == ".." or top.endswith(".pth") or (site / top).exists():
                continue
            source = Path(dist.locate_file(top))
            if source.exists():
                (site / top).symlink_to(source)
    return site


@pytest.mark.parametrize("package_dir", PACKAGE_DIRS, ids=lambda p: p.name)
def test_package_installs_alone(package_dir: Path, wheelhouse: Path, third_party_site: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(purelib, "_third_party.pth").write_text(f"{third_party_site}\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    dist_name = f"vidseg-{package_dir.name}"

    _run([*pip, "install", "--no-index", "--find-links", str(wheelhouse), dist_name])
    check = _run([*pip, "check"])
    assert "No broken requirements found" in check.stdout

    installed = _run([*pip, "list", "--format=freeze", "--path", purelib]).stdout
    vidseg_dists = sorted(line.split("==")[0] for line in installed.splitlines() if line.startswith("vidseg"))
    expected = sorted({dist_name, "vidseg-common"})
    assert vidseg_dists == expected, "only the package and vidseg-common may be installed"

    script = "vidseg" if package_dir.name == "common" else dist_name
    result = _run([str(venv / "bin" / script), "--help"], cwd=tmp_path)
    assert "usage" in result.stdout.lower()
