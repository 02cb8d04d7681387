"""Shared fixtures of the data tests: small synthetic datasets generated once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.generator import generate_dataset

SMALL = {"num_videos": 2, "num_val_videos": 2, "num_frames": 11, "height": 48, "width": 80}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``synth(layout, **options)`` → root of a small generated dataset (cached per options)."""
    cache: dict[tuple, Path] = {}

    def make(layout: str, **options: object) -> Path:
        opts = {**SMALL, **options}
        key = (layout, tuple(sorted(opts.items())))
        if key not in cache:
            root = tmp_path_factory.mktemp(layout)
            generate_dataset(root, SyntheticConfig(layout=layout, **opts), workers=1)
            cache[key] = root
        return cache[key]

    return make


def _files_under(root: Path, skip: tuple[str, ...] = ("synthetic.json",)) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


@pytest.fixture(scope="session")
def files_under() -> Callable[..., dict[str, bytes]]:
    """``files_under(root)`` → ``{relative path: bytes}`` of every file under ``root`` (except synthetic.json)."""
    return _files_under
