"""Rasterise a synthetic video: background crop (camera pan) + depth-ordered textured objects + exact flow."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vidseg_common.data.synthetic.objects import (
    MovingObject,
    canonical_to_pixels,
    pixel_grid,
    shape_mask,
    trajectories,
)


@dataclass
class RenderedVideo:
    """Output of :func:`render_video`.

    Attributes:
        frames: ``(T, H, W, 3) uint8``.
        owner: ``(T, H, W) uint8``: 0 = background, ``i + 1`` = object ``i`` (front-most).
        background_label: ``(T, H, W) uint8`` crop of the background label canvas (semantic scenes).
        flow: ``(T - 1, H, W, 2) float32`` forward flow ``t → t+1`` (u, v), or ``None``.
    """

    frames: np.ndarray
    owner: np.ndarray
    background_label: np.ndarray
    flow: np.ndarray | None


def background_canvas(rng: np.random.Generator, height: int, width: int, cells: int = 8) -> np.ndarray:
    """A smooth, low-saturation ``(H, W, 3) uint8`` background texture (upsampled random grid + fine noise)."""
    coarse = rng.uniform(70, 180, (cells, max(int(cells * width / height), 2), 3)).astype(np.float32)
    coarse = coarse.mean(axis=2, keepdims=True) * 0.6 + coarse * 0.4
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(smooth + fine, 0, 255).astype(np.uint8)


def camera_offsets(num_frames: int, speed: float, canvas_width: int, width: int) -> np.ndarray:
    """Integer horizontal pan ``(T, 2)`` (x, y) that bounces inside the canvas."""
    travel = canvas_width - width
    t = np.arange(num_frames)
    if travel <= 0 or int(speed) == 0:
        return np.zeros((num_frames, 2), dtype=np.int64)
    pos = np.mod(t * int(speed), 2 * travel)
    x = np.where(pos <= travel, pos, 2 * travel - pos)
    return np.stack([x, np.zeros_like(x)], axis=1).astype(np.int64)


def render_video(
    objects: list[MovingObject],
    canvas_rgb: np.ndarray,
    canvas_label: np.ndarray,
    offsets: np.ndarray,
    num_frames: int,
    height: int,
    width: int,
    with_flow: bool = True,
) -> RenderedVideo:
    """Render ``num_frames`` frames; ``offsets`` ``(T + 1, 2)`` are the camera crops (x, y) of the canvas."""
    poses = trajectories(objects, num_frames + 1, height, width)
    order = sorted(range(len(objects)), key=lambda i: -objects[i].depth)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    owner = np.zeros((num_frames, height, width), dtype=np.uint8)
    bg_label = np.empty((num_frames, height, width), dtype=np.uint8)
    flow = np.empty((num_frames - 1, height, width, 2), dtype=np.float32) if with_flow and num_frames > 1 else None
    for t in range(num_frames):
        ox, oy = offsets[t]
        frames[t] = canvas_rgb[oy : oy + height, ox : ox + width]
        bg_label[t] = canvas_label[oy : oy + height, ox : ox + width]
        has_flow = flow is not None and t < num_frames - 1
        if has_flow:
            flow[t, ..., 0] = float(ox - offsets[t + 1][0])
            flow[t, ..., 1] = float(oy - offsets[t + 1][1])
        for i in order:
            obj = objects[i]
            if t < obj.enter:
                continue
            grid = pixel_grid(obj, poses[i, t], height, width)
            if grid is None:
                continue
            rows, cols, xs, ys, u, v = grid
            inside = shape_mask(obj.shape, u, v)
            if not inside.any():
                continue
            size = obj.texture.shape[0] - 1
            iu = np.clip(np.rint((u + 1) * 0.5 * size), 0, size).astype(np.intp)
            iv = np.clip(np.rint((v + 1) * 0.5 * size), 0, size).astype(np.intp)
            frames[t, rows, cols][inside] = obj.texture[iv[inside], iu[inside]]
            owner[t, rows, cols][inside] = i + 1
            if has_flow:
                x1, y1 = canonical_to_pixels(obj, poses[i, t + 1], u[inside], v[inside])
                xs_b, ys_b = np.broadcast_to(xs, u.shape)[inside], np.broadcast_to(ys, u.shape)[inside]
                flow[t, rows, cols, 0][inside] = x1 - xs_b
                flow[t, rows, cols, 1][inside] = y1 - ys_b
    return RenderedVideo(frames, owner, bg_label, flow)


def apply_corruptions(
    frames: np.ndarray,
    rng: np.random.Generator,
    prob: float,
    length: int,
    strength: float = 1.0,
) -> list[tuple[int, str]]:
    """Corrupt bursts of ``length`` frames in place (noise, blur or brightness); returns ``[(frame, kind)]``.

    ``strength`` k scales the severity (noise σ = 40·k, blur σ = 4·k, brightness factor 0.3^k or 1.8^k); the
    random draws are the same for every k, so the corrupted frames do not depend on it.
    """
    applied: list[tuple[int, str]] = []
    t = 0
    while t < len(frames):
        if prob > 0 and rng.random() < prob:
            kind = ("noise", "blur", "brightness")[int(rng.integers(3))]
            for k in range(t, min(t + length, len(frames))):
                frame = frames[k]
                if kind == "noise":
                    noisy = frame.astype(np.int16) + rng.normal(0, 40 * strength, frame.shape).astype(np.int16)
                    frames[k] = np.clip(noisy, 0, 255).astype(np.uint8)
                elif kind == "blur":
                    frames[k] = cv2.GaussianBlur(frame, (0, 0), sigmaX=4.0 * strength)
                else:
                    frames[k] = np.clip(frame.astype(np.float32) * rng.choice([0.3, 1.8]) ** strength, 0, 255).astype(np.uint8)
                applied.append((k, kind))
            t += length
        else:
            t += 1
    return applied
