"""Textured moving objects of the synthetic generator: shapes, colour families, trajectories.

An object lives in canonical coordinates ``(u, v) ∈ [-1, 1]²``; its pose at frame ``t`` is a centre
``(cx, cy)`` in pixels, an angle ``θ`` and a scale ``s`` (radius ``s · size`` pixels, ``aspect``
stretching ``v``). Pixel ``x = c + s·size·R(θ)·(u, aspect·v)``, so the texture moves with the object
and the exact forward flow of a pixel is ``pose_{t+1}(u, v) − x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "ellipse", "cross")
COLOR_FAMILIES: dict[str, tuple[int, int, int]] = {
    "red": (205, 45, 40), "green": (45, 170, 60), "blue": (45, 75, 205),
    "yellow": (225, 205, 45), "purple": (145, 55, 175), "cyan": (45, 190, 205),
}
TEXTURE_SIZE = 32


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of ``shape`` at canonical coordinates ``u, v`` (same shape arrays) → bool."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "triangle":
        return (v <= 0.7) & (v >= 2.0 * np.abs(u) - 0.9)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "ellipse":
        return u * u + (v / 0.55) ** 2 <= 1.0
    if shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95))
    raise ValueError(f"unknown shape {shape!r}")


def make_texture(rng: np.random.Generator, base: tuple[int, int, int], jitter: float = 25.0) -> np.ndarray:
    """A ``(S, S, 3) uint8`` texture: the family colour (jittered) modulated by stripes and noise."""
    color = np.clip(np.asarray(base, dtype=np.float32) + rng.uniform(-jitter, jitter, 3), 0, 255)
    grid = np.linspace(0, 2 * np.pi, TEXTURE_SIZE, dtype=np.float32)
    freq, phase = rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi)
    stripes = 0.85 + 0.15 * np.sin(freq * (grid[None, :] + grid[:, None]) + phase)
    noise = rng.uniform(0.92, 1.08, (TEXTURE_SIZE, TEXTURE_SIZE)).astype(np.float32)
    return np.clip(color[None, None, :] * (stripes * noise)[..., None], 0, 255).astype(np.uint8)


@dataclass
class MovingObject:
    """One object and its trajectory parameters (see the module docstring for the pose model).

    Attributes:
        shape: a name from :data:`SHAPES`.
        label: value written in the id map (object id for VOS, category for VIS, class for VSS).
        category: dataset category id (VIS/YouTube-VOS meta); 0 if unused.
        family: colour family name.
        texture: ``(S, S, 3) uint8``.
        size: radius in pixels at scale 1.
        aspect: ``v`` stretch (height / width of the canonical shape).
        depth: larger is farther; far objects are painted first.
        enter: first frame the object exists.
        follow: index of an object whose centre this one copies inside ``follow_window`` (full occlusion).
    """

    shape: str
    label: int
    category: int
    texture: np.ndarray
    center0: np.ndarray
    velocity: np.ndarray
    size: float
    family: str = ""
    aspect: float = 1.0
    angle0: float = 0.0
    omega: float = 0.0
    scale_amplitude: float = 0.0
    scale_period: float = 20.0
    scale_phase: float = 0.0
    depth: float = 0.0
    enter: int = 0
    follow: int | None = None
    follow_window: tuple[float, float] = (0.0, 0.0)
    follow_offset: tuple[float, float] = (0.0, 0.0)


def _fold(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect positions into ``[lo, hi]`` (bouncing off the borders)."""
    span = max(hi - lo, 1e-6)
    q = np.mod(p - lo, 2 * span)
    return lo + np.where(q <= span, q, 2 * span - q)


def trajectories(objects: list[MovingObject], num_frames: int, height: int, width: int) -> np.ndarray:
    """Poses ``(N, T, 4)`` = ``(cx, cy, θ, s)`` for frames ``0..T-1`` (pass ``T+1`` to get the flow target)."""
    t = np.arange(num_frames, dtype=np.float64)
    poses = np.zeros((len(objects), num_frames, 4))
    for i, obj in enumerate(objects):
        margin = obj.size * 0.5
        poses[i, :, 0] = _fold(obj.center0[0] + obj.velocity[0] * t, margin, width - 1 - margin)
        poses[i, :, 1] = _fold(obj.center0[1] + obj.velocity[1] * t, margin, height - 1 - margin)
        poses[i, :, 2] = obj.angle0 + obj.omega * t
        poses[i, :, 3] = 1.0 + obj.scale_amplitude * np.sin(2 * np.pi * t / obj.scale_period + obj.scale_phase)
    for i, obj in enumerate(objects):
        if obj.follow is not None:
            start, stop = obj.follow_window
            mid, half = (start + stop) / 2, (stop - start) / 2
            ramp = np.clip((np.abs(t - mid) - half) / max(half, 1.0), 0.0, 1.0)
            offset = np.asarray(obj.follow_offset)[None, :] * ramp[:, None]
            poses[i, :, 0] = _fold(poses[obj.follow, :, 0] + offset[:, 0], 0, width - 1)
            poses[i, :, 1] = _fold(poses[obj.follow, :, 1] + offset[:, 1], 0, height - 1)
    return poses


def pixel_grid(obj: MovingObject, pose: np.ndarray, height: int, width: int):
    """Bounding-box pixel grid of ``obj`` at ``pose``: ``(ys, xs, u, v)`` or ``None`` if off-screen."""
    cx, cy, angle, scale = pose
    radius = scale * obj.size * max(1.0, obj.aspect) * 1.42 + 1
    x0, x1 = max(int(cx - radius), 0), min(int(cx + radius) + 2, width)
    y0, y1 = max(int(cy - radius), 0), min(int(cy + radius) + 2, height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    dx, dy = xs - cx, ys - cy
    cos, sin, r = np.cos(angle), np.sin(angle), scale * obj.size
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / (r * obj.aspect)
    return (slice(y0, y1), slice(x0, x1), xs, ys, u, v)


def canonical_to_pixels(obj: MovingObject, pose: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(x, y)`` of canonical points ``(u, v)`` at ``pose``."""
    cx, cy, angle, scale = pose
    r = scale * obj.size
    cos, sin = np.cos(angle), np.sin(angle)
    va = v * obj.aspect
    return cx + r * (cos * u - sin * va), cy + r * (sin * u + cos * va)
