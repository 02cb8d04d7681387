"""Where the engine writes by default: the project root (the enclosing git checkout, else the cwd)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest ancestor of ``start`` (default: cwd) holding a ``.git`` entry, else ``start`` itself."""
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def git_commit(root: str | os.PathLike[str] | None = None) -> str:
    """The checked-out commit of ``root`` (``-dirty`` appended when the tree has changes), or ``"unknown"``."""
    cwd = Path(root or project_root())
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
