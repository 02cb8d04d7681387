"""The documentation is self-contained: a plain clone has every file that the docs and the code cite.

- every relative Markdown link ``[text](path)`` of a ``*.md`` file resolves to a file or folder of the repository;
- no ``.md`` / ``.py`` / ``.yaml`` / ``.toml`` file cites the old shared folder next to the repository (its content
  now lives in ``docs/`` and ``tests/fixtures/``);
- every ``docs/...md`` path mentioned in a ``.md`` or ``.py`` file exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRUNED = {"outputs", "mlruns", "lightning_logs", "build", "dist", "node_modules", "__pycache__"}
# the old shared folder, and DESIGN.md: the old name of docs/architecture.md
FORBIDDEN = ("../shared/", "shared/fixtures", "shared/reference", "DESIGN.md")

LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
DOCS_PATH = re.compile(r"(?<![\w./-])docs/(?:[\w-]+/)*[\w-]+\.md\b")


def _files(*suffixes: str) -> list[Path]:
    """Repository files with these suffixes, outside hidden folders (.git, .venv, .cache, ...) and run outputs."""
    found = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in PRUNED and not d.endswith(".egg-info")]
        found += [Path(folder, n) for n in names if n.endswith(suffixes)]
    return sorted(found)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


MARKDOWN = _files(".md")


def test_markdown_files_are_found() -> None:
    assert {"README.md", "docs/README.md", "docs/architecture.md", "tests/fixtures/README.md"} <= {
        _rel(p) for p in MARKDOWN
    }


@pytest.mark.parametrize("md", MARKDOWN, ids=_rel)
def test_relative_links_resolve_inside_the_repository(md: Path) -> None:
    broken = []
    for target in LINK.findall(FENCE.sub("", md.read_text(encoding="utf-8"))):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (md.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{_rel(md)}: links to missing or outside-repository files: {broken}"


@pytest.mark.parametrize("suffix", [".md", ".py", ".yaml", ".toml"])
def test_nothing_cites_the_shared_folder(suffix: str) -> None:
    hits = [
        f"{_rel(path)}:{number}: {line.strip()}"
        for path in _files(suffix)
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(word in line for word in FORBIDDEN)
    ]
    assert not hits, "cite docs/architecture.md, docs/reference/*.md or tests/fixtures/ instead:\n" + "\n".join(hits)


@pytest.mark.parametrize("suffix", [".md", ".py"])
def test_cited_docs_paths_exist(suffix: str) -> None:
    missing = [
        f"{_rel(path)}:{number}: {cited}"
        for path in _files(suffix)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for cited in DOCS_PATH.findall(line)
        if not (ROOT / cited).is_file()
    ]
    assert not missing, "cited documents missing from docs/:\n" + "\n".join(missing)
