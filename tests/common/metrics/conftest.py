"""Shared helpers for the metrics tests: fixture locations and tiny mask builders."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path("/work/shared/fixtures")
if not FIXTURES.is_dir():  # the fixtures may also be checked out next to the repository
    FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"


@pytest.fixture
def fixtures_root() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip("official-evaluator fixtures (shared/fixtures) not available")
    return FIXTURES

