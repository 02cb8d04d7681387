"""Clip samplers follow each paper's protocol (docs/reference/vos.md §1.9, §2.4; docs/reference/vis.md §2.5, §3.6; docs/reference/vss.md §2.4)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vidseg_common.data.sampling import (
    CyclicWindow,
    LocalGlobal,
    MaxSkip,
    MaxSkipCurriculum,
    PreviousFrames,
    ReferencePreviousCurrent,
    WholeVideo,
)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 80), skip=st.integers(1, 25), seed=st.integers(0, 10_000))
def test_max_skip_matches_stcn_bounds(n: int, skip: int, seed: int) -> None:
    idx = MaxSkip(3, skip, reverse_prob=0.0)(n, np.random.default_rng(seed))
    jump = min(n, skip)
    assert len(idx) == 3 and all(0 <= i < n for i in idx)
    assert idx[0] <= n - jump
    assert idx[1] <= min(n - jump, n - 1) and idx[2] <= min(n - jump // 2, n - 1)
    assert idx[1] - idx[0] <= jump + 1 and idx[2] - idx[1] <= jump + 1


def test_max_skip_reverses_sometimes() -> None:
    rng = np.random.default_rng(0)
    orders = [MaxSkip(3, 5)(50, rng) for _ in range(200)]
    assert any(o[0] > o[-1] for o in orders) and any(o[0] < o[-1] for o in orders)


def test_curriculum_schedule() -> None:
    schedule = MaxSkipCurriculum()
    assert [schedule(p) for p in (0.0, 0.1, 0.25, 0.35, 0.5, 0.95)] == [5, 10, 15, 20, 25, 5]
    assert MaxSkipCurriculum(divisor=5)(0.5) == 5


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 50), seed=st.integers(0, 10_000))
def test_reference_previous_current(n: int, seed: int) -> None:
    idx = ReferencePreviousCurrent(num_current=3, max_gap=3, reverse_prob=0.0)(n, np.random.default_rng(seed))
    assert len(idx) == 5 and all(0 <= i < n for i in idx)
    seq = idx[1:]
    if n > 4:  # away from reflections every gap is 1..3
        assert all(1 <= abs(b - a) <= 3 or a + b >= 2 * (n - 1) - 3 for a, b in itertools.pairwise(seq))


def test_vistr_cyclic_window() -> None:
    rng = np.random.default_rng(0)
    idx = CyclicWindow(36)(10, rng)
    anchor = idx[-1]
    assert len(idx) == 36
    assert idx == [(anchor - k) % 10 for k in range(35, -1, -1)]  # python negative indexing of VisTR


def test_consecutive_window_long_video() -> None:
    idx = CyclicWindow(5)(100, np.random.default_rng(3))
    assert np.all(np.diff(idx) % 100 == 1)  # consecutive (modulo the cyclic wrap)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_seqformer_local_global(n: int, seed: int) -> None:
    idx = LocalGlobal(5, 3)(n, np.random.default_rng(seed))
    assert len(idx) == 5 and idx == sorted(idx) and all(0 <= i < n for i in idx)
    if n >= 8:  # a repeat can only come from end clamping or the span's last frame: at most 2 repeats
        assert len(set(idx)) >= 3


def test_seqformer_global_frames_reach_far() -> None:
    rng = np.random.default_rng(0)
    spans = [max(s) - min(s) for s in (LocalGlobal(5, 3)(60, rng) for _ in range(200))]
    assert np.mean(np.array(spans) > 6) > 0.8  # local frames alone span at most 6


def test_previous_frames_offsets() -> None:
    rng = np.random.default_rng(0)
    offsets = PreviousFrames(3, max_gap=2)(-19, rng)
    assert offsets[-1] == 0 and len(offsets) == 4
    assert all(1 <= b - a <= 2 for a, b in itertools.pairwise(offsets))
    assert PreviousFrames(3, deterministic=True, eval_gap=2)(-19) == [-6, -4, -2, 0]
    assert PreviousFrames(3, deterministic=True, eval_gap=3)(-4) == [-4, -4, -3, 0]  # clamped at the snippet start
    assert WholeVideo()(4) == [0, 1, 2, 3]
