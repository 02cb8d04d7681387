"""Seeded, single-threaded test bodies (small CPU models give identical numbers run to run)."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def seeded_single_thread() -> Iterator[None]:
    """Generator for an autouse fixture: ``torch.manual_seed(0)`` and 1 intra-op thread, restored afterwards.

    A paper's ``conftest.py`` enables it with
    ``_seed_and_threads = pytest.fixture(autouse=True, name="_seed_and_threads")(seeded_single_thread)``.
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
