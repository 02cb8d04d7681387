"""Must-show 5: every package builds a wheel that installs alone into a fresh virtual environment.

The fresh environment gets only the package, its declared dependencies and (for paper packages)
vidseg-common from the freshly built wheels. Third-party wheels are not reinstalled per environment:
they are installed once (pinned by constraints.txt) into a cached folder that the fresh environments
see through a ``.pth`` file, and pip installs with ``--no-index``, so a dependency that a package forgot
to declare fails the install instead of being fetched silently.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
CACHE = ROOT / ".cache" / "isolation-deps"


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


@pytest.fixture(scope="module")
def third_party_site() -> Path:
    """Third-party requirements installed once into ``.cache/isolation-deps/<hash>`` (reused across runs)."""
    requirements = _third_party_requirements()
    key = hashlib.sha256(
        "\n".join([sys.version, (ROOT / "constraints.txt").read_text(), *requirements]).encode()
    ).hexdigest()[:16]
    target = CACHE / key
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers build it once
        if not (target / ".complete").exists():
            _run([sys.executable, "-m", "pip", "install", "-qq", "--target", str(target / "site"),
                  "-c", str(ROOT / "constraints.txt"), *requirements])
            (target / ".complete").touch()
    return target / "site"


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
