"""Shared helpers for the metrics tests: fixture locations and tiny mask builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The official-evaluator fixtures live in the shared folder next to the repository (VIDSEG_SHARED overrides).
FIXTURES = Path(os.environ.get("VIDSEG_SHARED", Path(__file__).resolve().parents[4] / "shared")) / "fixtures"


@pytest.fixture
def fixtures_root() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip("official-evaluator fixtures (shared/fixtures) not available")
    return FIXTURES

