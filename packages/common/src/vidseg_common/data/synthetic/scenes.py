"""Sample the content of one synthetic video: instance scenes (VOS/VIS) and semantic street scenes (VSS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.objects import COLOR_FAMILIES, SHAPES, MovingObject, make_texture
from vidseg_common.data.synthetic.render import background_canvas, camera_offsets

SEMANTIC_CLASSES = ("road", "sidewalk", "building", "vegetation", "sky", "pole", "car", "person", "void")
"""Internal class indices of semantic scenes; layouts map them to real ids (Cityscapes labelIds, CamVid ids)."""
SEMANTIC_COLORS = np.array(
    [(128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35), (70, 130, 180),
     (153, 153, 153), (0, 0, 142), (220, 20, 60), (20, 20, 20)],
    dtype=np.float32,
)
_CLS = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}


@dataclass
class Scene:
    """Everything :func:`~vidseg_common.data.synthetic.render.render_video` needs."""

    objects: list[MovingObject]
    canvas_rgb: np.ndarray
    canvas_label: np.ndarray
    offsets: np.ndarray


def category_name(category: int, num_colors: int) -> str:
    """``"<shape>-<colour>"`` name of a synthetic category id (1-based)."""
    shape, color = divmod(category - 1, num_colors)
    return f"{SHAPES[shape]}-{list(COLOR_FAMILIES)[color]}"


def _canvas_width(cfg: SyntheticConfig, num_frames: int) -> int:
    return cfg.width + min(int(cfg.camera_speed) * num_frames, cfg.width)


def sample_instance_scene(rng: np.random.Generator, cfg: SyntheticConfig, num_frames: int) -> Scene:
    """Objects with categories shape × colour, grid-separated in frame 0, optional occluder/late entries."""
    h, w = cfg.height, cfg.width
    count = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    cols = int(np.ceil(np.sqrt(count * w / h)))
    rows = int(np.ceil(count / cols))
    cell_w, cell_h = w / cols, h / rows
    cells = rng.permutation(rows * cols)[:count]
    base_size = min(cell_w, cell_h) * 0.3
    families = list(COLOR_FAMILIES)
    objects: list[MovingObject] = []
    for i, cell in enumerate(cells):
        shape, color = int(rng.integers(cfg.num_shapes)), int(rng.integers(cfg.num_colors))
        if cfg.similar_distractor and i == count - 1 and count > 1:
            shape, color = SHAPES.index(objects[0].shape), families.index(objects[0].family)
        r, c = divmod(int(cell), cols)
        center = np.array([(c + rng.uniform(0.35, 0.65)) * cell_w, (r + rng.uniform(0.35, 0.65)) * cell_h])
        speed = rng.uniform(0.3, 1.0) * cfg.max_speed * w
        heading = rng.uniform(0, 2 * np.pi)
        obj = MovingObject(
            shape=SHAPES[shape], label=i + 1, category=shape * cfg.num_colors + color + 1, family=families[color],
            texture=make_texture(rng, COLOR_FAMILIES[families[color]]),
            center0=center, velocity=speed * np.array([np.cos(heading), np.sin(heading)]),
            size=base_size * rng.uniform(0.7, 1.0), angle0=rng.uniform(0, 2 * np.pi),
            omega=rng.uniform(-cfg.max_rotation, cfg.max_rotation), scale_amplitude=cfg.scale_amplitude,
            scale_period=rng.uniform(15, 40), scale_phase=rng.uniform(0, 2 * np.pi), depth=rng.uniform(0, 1),
        )
        if cfg.late_entry and i > 0 and rng.random() < 0.5 and num_frames > cfg.frame_step:
            obj.enter = cfg.frame_step * int(rng.integers(1, (num_frames - 1) // cfg.frame_step + 1))
        objects.append(obj)
    if cfg.full_occlusion and count >= 2:
        occluder, hidden = objects[0], objects[1]
        occluder.shape, occluder.depth = "circle", 0.0
        occluder.size = base_size * 1.1
        occluder.scale_amplitude = hidden.scale_amplitude = min(cfg.scale_amplitude, 0.15)
        hidden.size, hidden.depth, hidden.enter = occluder.size * 0.45, 1.0, 0
        hidden.follow = 0
        hidden.follow_window = (num_frames * 0.4, num_frames * 0.6)
        direction = rng.uniform(0, 2 * np.pi)
        hidden.follow_offset = (np.cos(direction) * occluder.size * 2.6, np.sin(direction) * occluder.size * 2.6)
    canvas_w = _canvas_width(cfg, num_frames)
    canvas = background_canvas(rng, h, canvas_w)
    offsets = camera_offsets(num_frames + 1, cfg.camera_speed, canvas_w, w)
    return Scene(objects, canvas, np.zeros((h, canvas_w), dtype=np.uint8), offsets)


def sample_semantic_scene(rng: np.random.Generator, cfg: SyntheticConfig, num_frames: int) -> Scene:
    """A street scene: sky, buildings/vegetation, sidewalk, road, poles, an ego-vehicle void strip, cars and people."""
    h, w = cfg.height, cfg.width
    canvas_w = _canvas_width(cfg, num_frames)
    label = np.full((h, canvas_w), _CLS["sky"], dtype=np.uint8)
    horizon = int(h * rng.uniform(0.45, 0.55))
    rows = np.arange(h)[:, None]
    x = 0
    while x < canvas_w:
        block = int(rng.uniform(0.15, 0.35) * w)
        top = int(h * rng.uniform(0.1, 0.35))
        kind = "vegetation" if rng.random() < 0.3 else "building"
        label[top:horizon, x : x + block] = _CLS[kind]
        x += block
    sidewalk = horizon + max(int(h * 0.08), 1)
    label[horizon:sidewalk] = _CLS["sidewalk"]
    label[sidewalk:] = _CLS["road"]
    pole_width = cfg.pole_width or max(w // 80, 2)
    for px in range(int(rng.uniform(0.1, 0.3) * w), canvas_w, max(int(w * 0.4), 4)):
        label[int(h * 0.25) : sidewalk, px : px + pole_width] = _CLS["pole"]
    label[h - max(h // 16, 2) :] = _CLS["void"]
    colors = SEMANTIC_COLORS[label]
    noise = rng.normal(1.0, 0.06, (h, canvas_w, 1)).astype(np.float32)
    canvas = np.clip(colors * noise * (0.9 + 0.1 * (rows / h))[..., None], 0, 255).astype(np.uint8)
    count = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects = []
    for i in range(count):
        is_car = rng.random() < 0.6
        cls = "car" if is_car else "person"
        size = h * (rng.uniform(0.08, 0.13) if is_car else rng.uniform(0.05, 0.08))
        y = rng.uniform(sidewalk + size * 0.6, h - h // 16 - size * 0.6) if is_car else horizon + rng.uniform(0, h * 0.05)
        speed = rng.uniform(0.3, 1.0) * cfg.max_speed * w * rng.choice([-1.0, 1.0])
        objects.append(MovingObject(
            shape="square" if is_car else "ellipse", label=_CLS[cls], category=0,
            texture=make_texture(rng, tuple(int(c) for c in SEMANTIC_COLORS[_CLS[cls]]), jitter=10),
            center0=np.array([rng.uniform(0, w), y]), velocity=np.array([speed, 0.0]), size=size,
            aspect=0.6 if is_car else 3.2, depth=float(i),
        ))
    offsets = camera_offsets(num_frames + 1, cfg.camera_speed, canvas_w, w)
    return Scene(objects, canvas, label, offsets)
