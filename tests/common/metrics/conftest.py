"""Shared fixture of the metrics tests: where the official-evaluator fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

# The official-evaluator fixtures are part of the repository (tests/fixtures/README.md describes them).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def fixtures_root() -> Path:
    """``tests/fixtures``: a missing fixture is a broken checkout, so it fails instead of skipping."""
    for name in ("davis", "ytvis"):
        assert (FIXTURES / name / "expected.json").is_file(), f"official-evaluator fixtures missing: {FIXTURES / name}"
    return FIXTURES
