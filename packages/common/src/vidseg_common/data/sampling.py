"""Clip samplers: which frame indices of a video form one training clip, per paper protocol.

Every sampler is called as ``sampler(num_frames, rng)`` with the video length and a
``numpy.random.Generator`` and returns a list of frame indices (VSS samplers return offsets ≤ 0
relative to the annotated frame instead). Evaluation uses :class:`WholeVideo`.

| sampler | protocol | source |
|---|---|---|
| :class:`ReferencePreviousCurrent` | reference + previous + current frames, random gaps | CFBI/AOT ``VOSTrain`` (SSTVOS, docs/reference/vos.md §1.9) |
| :class:`MaxSkip` | 3 frames within a max skip, curriculum | STCN ``vos_dataset.py`` (SpVOS, docs/reference/vos.md §2.4) |
| :class:`CyclicWindow` | T consecutive frames ending at an anchor (cyclic) | VisTR ``ytvos.py`` (docs/reference/vis.md §2.5) |
| :class:`LocalGlobal` | anchor, 1 local frame each side, T−3 global | SeqFormer ``ytvos.py`` (docs/reference/vis.md §3.6) |
| :class:`PreviousFrames` | annotated frame + T previous with random gaps | TDNet/STT (docs/reference/vss.md §2.4) |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidseg_common.errors import ConfigError


def _reflect(index: int, num_frames: int) -> int:
    """Reflect an index into ``[0, n)`` at both ends (AOT's gap reflection)."""
    if num_frames == 1:
        return 0
    period = 2 * (num_frames - 1)
    index = index % period
    return index if index < num_frames else period - index


class WholeVideo:
    """Every frame in order (evaluation: batch 1, any length)."""

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> list[int]:
        return list(range(num_frames))


class ReferencePreviousCurrent:
    """``[reference, previous, current_1 … current_K]`` (CFBI/AOT, used for SSTVOS).

    The reference is a random frame; the previous frame is random and each current frame follows the
    one before it by a gap drawn from ``[1, max_gap]``, reflected at the video ends; the
    previous/current sequence is time-reversed with probability ``reverse_prob``. (AOT also retries
    references with < 200 foreground pixels; the dataset does that with ``min_reference_pixels``.)

    Args:
        num_current: current frames per sample (``CURR_SEQ_LEN = 3``).
        max_gap: largest gap (``RANDOM_GAP_DAVIS = 3``).
        reverse_prob: probability of reversing time (``RANDOM_REVERSE_SEQ``: 0.5).
    """

    def __init__(self, num_current: int = 3, max_gap: int = 3, reverse_prob: float = 0.5) -> None:
        if num_current < 1 or max_gap < 1:
            raise ConfigError(f"num_current and max_gap must be ≥ 1, got {num_current}, {max_gap}")
        self.num_current, self.max_gap, self.reverse_prob = num_current, max_gap, reverse_prob

    def __call__(self, num_frames: int, rng: np.random.Generator) -> list[int]:
        reference = int(rng.integers(num_frames))
        seq = [int(rng.integers(num_frames))]
        for _ in range(self.num_current):
            seq.append(_reflect(seq[-1] + int(rng.integers(1, self.max_gap + 1)), num_frames))
        if rng.random() < self.reverse_prob:
            seq = [num_frames - 1 - i for i in seq]
        return [reference, *seq]


class MaxSkip:
    """Three (or more) ordered frames at most ``max_skip`` apart (STCN, used by SpVOS).

    STCN: ``J = min(n, max_skip)``, ``start ~ U[0, n−J]``, each next frame ``min(prev + U{1..J+1},
    n − J/2^k, n − 1)``; the clip is reversed with probability ``reverse_prob``.

    Args:
        num_frames: frames per clip (3).
        max_skip: current maximum skip; change it during training with :meth:`set_max_skip`.
        reverse_prob: probability of reversing time (0.5).
    """

    def __init__(self, num_frames: int = 3, max_skip: int = 5, reverse_prob: float = 0.5) -> None:
        if num_frames < 2 or max_skip < 1:
            raise ConfigError(f"MaxSkip needs num_frames ≥ 2 and max_skip ≥ 1, got {num_frames}, {max_skip}")
        self.num_frames, self.max_skip, self.reverse_prob = num_frames, max_skip, reverse_prob

    def set_max_skip(self, max_skip: int) -> None:
        self.max_skip = max(1, int(max_skip))

    def __call__(self, num_frames: int, rng: np.random.Generator) -> list[int]:
        jump = min(num_frames, self.max_skip)
        idx = [int(rng.integers(num_frames - jump + 1))]
        for k in range(1, self.num_frames):
            nxt = idx[-1] + int(rng.integers(jump + 1)) + 1
            idx.append(min(nxt, num_frames - jump // (2 ** (k - 1)), num_frames - 1))
        if rng.random() < self.reverse_prob:
            idx = idx[::-1]
        return idx


class MaxSkipCurriculum:
    """STCN's max-skip schedule: ``skips[i]`` from ``milestones[i]`` (fraction of training) on, ``start`` before.

    Defaults are STCN's ``skip_values=[10, 15, 20, 25, 5]`` at ``[10, 20, 30, 40, 90] %``, start 5.
    ``divisor`` divides the skip for sparsely annotated sets (YouTube-VOS: 5).
    """

    def __init__(
        self,
        skips: Sequence[int] = (10, 15, 20, 25, 5),
        milestones: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.9),
        start: int = 5,
        divisor: int = 1,
    ) -> None:
        if len(skips) != len(milestones) or list(milestones) != sorted(milestones):
            raise ConfigError(f"curriculum needs one sorted milestone per skip, got {skips} / {milestones}")
        self.skips, self.milestones, self.start, self.divisor = list(skips), list(milestones), start, max(divisor, 1)

    def __call__(self, progress: float) -> int:
        """Max skip at training ``progress`` ∈ [0, 1]."""
        value = self.start
        for skip, milestone in zip(self.skips, self.milestones):
            if progress >= milestone:
                value = skip
        return max(1, value // self.divisor)


class CyclicWindow:
    """``T`` consecutive frames ending at a random anchor, wrapping cyclically (VisTR: T = 36).

    VisTR reads ``file_names[anchor − k]`` for ``k = T−1 … 0`` with Python negative indexing, so
    short videos repeat cyclically.
    """

    def __init__(self, num_frames: int = 36) -> None:
        if num_frames < 1:
            raise ConfigError(f"num_frames must be ≥ 1, got {num_frames}")
        self.num_frames = num_frames

    def __call__(self, num_frames: int, rng: np.random.Generator) -> list[int]:
        anchor = int(rng.integers(num_frames))
        return [(anchor - k) % num_frames for k in range(self.num_frames - 1, -1, -1)]


class LocalGlobal:
    """SeqFormer: the anchor, one frame 1..``local_range`` before and after it (clamped at the ends), and
    ``T − 3`` global frames drawn without replacement from ``[0, min) ∪ [max, n)`` of the local span
    (as ``datasets/ytvos.py``, whose range includes the span's last frame); if that pool is not larger
    than needed, from the whole video, and with repetition for videos shorter than ``T − 3``.
    Sorted by time. Clamping can repeat a frame at the video ends, as in the reference.
    """

    def __init__(self, num_frames: int = 5, local_range: int = 3) -> None:
        if num_frames < 1 or local_range < 1:
            raise ConfigError(f"num_frames and local_range must be ≥ 1, got {num_frames}, {local_range}")
        self.num_frames, self.local_range = num_frames, local_range

    def __call__(self, num_frames: int, rng: np.random.Generator) -> list[int]:
        anchor = int(rng.integers(num_frames))
        idx = [anchor]
        if self.num_frames > 1:
            idx += [max(anchor - int(rng.integers(1, self.local_range + 1)), 0),
                    min(anchor + int(rng.integers(1, self.local_range + 1)), num_frames - 1)]
        need = self.num_frames - len(idx)
        if need > 0:
            pool = [*range(0, min(idx)), *range(max(idx), num_frames)]
            if len(pool) > need:
                idx += [pool[i] for i in rng.choice(len(pool), size=need, replace=False)]
            elif num_frames >= need:
                idx += rng.choice(num_frames, size=need, replace=False).tolist()
            else:
                idx += [*range(num_frames), *rng.choice(num_frames, size=need - num_frames).tolist()]
        return sorted(int(i) for i in idx[: self.num_frames])


class PreviousFrames:
    """Offsets ``[−g_1−…−g_T, …, −g_1, 0]`` of T previous frames before the annotated one (TDNet/STT).

    Gaps are drawn from ``[1, max_gap]`` (TDNet: ``randint(1, 2)``, so 1..6 frames back for T = 3),
    or fixed to ``eval_gap`` when ``deterministic``; offsets are clamped at ``min_offset`` (the snippet
    start: previous frames must stay inside the 30-frame Cityscapes snippet, GRFP#8).
    """

    def __init__(self, num_previous: int = 3, max_gap: int = 2, deterministic: bool = False, eval_gap: int = 1) -> None:
        if num_previous < 0 or max_gap < 1 or eval_gap < 1:
            raise ConfigError(f"bad PreviousFrames options {num_previous}, {max_gap}, {eval_gap}")
        self.num_previous, self.max_gap = num_previous, max_gap
        self.deterministic, self.eval_gap = deterministic, eval_gap

    def __call__(self, min_offset: int, rng: np.random.Generator | None = None) -> list[int]:
        offsets = [0]
        for _ in range(self.num_previous):
            gap = self.eval_gap if self.deterministic or rng is None else int(rng.integers(1, self.max_gap + 1))
            offsets.append(max(offsets[-1] - gap, min_offset))
        return offsets[::-1]
