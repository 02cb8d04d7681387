"""Mask overlays on one frame: object ids (VOS), instances with class names (VIS), class colours (VSS).

Every function takes ``image (H, W, 3) uint8`` and returns a new ``(H, W, 3) uint8`` array. A coloured pixel
is ``round((1 − alpha)·image + alpha·colour)``; with ``outline=True`` the region's boundary pixels (those
with a 4-neighbour of another id) get the pure colour. Pixels of the background id (VOS/VIS) or of the void
id 255 keep the frame's colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidseg_common.errors import DataError
from vidseg_common.viz.palette import class_names, class_palette, instance_palette

VOID_ID = 255


def to_uint8_image(frame: Any, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Undo the input normalisation of one frame: ``(3, H, W)`` float tensor/array → ``(H, W, 3) uint8``."""
    array = frame.detach().cpu().float().numpy() if hasattr(frame, "detach") else np.asarray(frame, np.float32)
    if array.ndim != 3 or array.shape[0] != 3:
        raise DataError(f"to_uint8_image: expected a (3, H, W) frame, got shape {array.shape}")
    pixels = array * np.asarray(std, np.float32).reshape(3, 1, 1) + np.asarray(mean, np.float32).reshape(3, 1, 1)
    return (np.clip(pixels, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)


def _check_pair(image: np.ndarray, ids: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"overlay: image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
    if ids.shape != image.shape[:2]:
        raise DataError(f"overlay: mask size {ids.shape} differs from the frame size {image.shape[:2]}")


def boundary(ids: np.ndarray) -> np.ndarray:
    """``(H, W) bool``: pixels with a 4-neighbour of a different id."""
    edge = np.zeros(ids.shape, dtype=bool)
    vertical = ids[1:] != ids[:-1]
    horizontal = ids[:, 1:] != ids[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


def _blend(image: np.ndarray, ids: np.ndarray, palette: np.ndarray, painted: np.ndarray, alpha: float,
           outline: bool) -> np.ndarray:
    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"overlay: alpha must be in [0, 1], got {alpha}")
    out = image.copy()
    colours = palette[ids[painted]].astype(np.float64)
    out[painted] = np.round((1.0 - alpha) * image[painted] + alpha * colours).astype(np.uint8)
    if outline:
        edge = boundary(ids) & painted
        out[edge] = palette[ids[edge]]
    return out


def _draw_captions(image: np.ndarray, regions: list[np.ndarray], texts: list[str], colours: list[np.ndarray]) -> np.ndarray:
    """Write ``texts[k]`` on a box of ``colours[k]`` at the centroid of ``regions[k]`` (``(H, W) bool``)."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    height, width = image.shape[:2]
    for region, text, colour in zip(regions, texts, colours):
        ys, xs = np.nonzero(region)
        if ys.size == 0 or not text:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = int(np.clip(xs.mean() - (right - left) / 2, 0, max(width - (right - left) - 2, 0)))
        y = int(np.clip(ys.mean() - (bottom - top) / 2, 0, max(height - (bottom - top) - 2, 0)))
        fill = tuple(int(c) for c in colour)
        ink = (0, 0, 0) if 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2] > 128 else (255, 255, 255)
        draw.rectangle((x, y, x + right - left + 1, y + bottom - top + 1), fill=fill)
        draw.text((x + 1 - left, y + 1 - top), text, fill=ink, font=font)
    return np.asarray(canvas).copy()


def overlay_ids(
    image: np.ndarray,
    ids: np.ndarray,
    alpha: float = 0.5,
    palette: np.ndarray | None = None,
    background: int = 0,
    outline: bool = True,
    label_ids: bool = False,
    names: dict[int, str] | None = None,
) -> np.ndarray:
    """Colour object ids (VOS: ``0`` background, ``1..K`` objects, ``255`` void) in the DAVIS palette.

    Args:
        image: ``(H, W, 3) uint8`` frame.
        ids: ``(H, W)`` integer id map (values 0..255).
        alpha: weight of the colour.
        palette: ``(256, 3) uint8``; defaults to :func:`instance_palette`.
        background: id left uncoloured.
        outline: draw region boundaries in the pure colour.
        label_ids: write each id (or ``names[id]``) at its region's centroid.
        names: optional caption per id.
    """
    ids = np.asarray(ids)
    _check_pair(image, ids)
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise DataError(f"overlay: ids must lie in [0, 255], got [{ids.min()}, {ids.max()}]")
    ids = ids.astype(np.int64)
    palette = instance_palette() if palette is None else np.asarray(palette, np.uint8)
    painted = (ids != background) & (ids != VOID_ID)
    out = _blend(image, ids, palette, painted, alpha, outline)
    if not label_ids:
        return out
    present = [int(i) for i in np.unique(ids[painted])]
    texts = [(names or {}).get(i, str(i)) for i in present]
    return _draw_captions(out, [ids == i for i in present], texts, [palette[i] for i in present])


def overlay_instances(
    image: np.ndarray,
    masks: np.ndarray,
    texts: Sequence[str] | None = None,
    color_ids: Sequence[int] | None = None,
    alpha: float = 0.5,
    outline: bool = True,
) -> np.ndarray:
    """Colour instance masks (VIS) and caption them (e.g. ``"2 person 0.87"``).

    Args:
        image: ``(H, W, 3) uint8`` frame.
        masks: ``(N, H, W) bool``; where masks overlap the later one is drawn on top (pass them by
            ascending score to keep the most confident visible).
        texts: one caption per instance (``None``: no captions).
        color_ids: palette index per instance (default ``1..N``): keep it fixed per track across frames.
        alpha: weight of the colour.
        outline: draw mask boundaries in the pure colour.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise DataError(f"overlay: instance masks must be (N, H, W), got shape {masks.shape}")
    _check_pair(image, masks[0] if len(masks) else np.zeros(image.shape[:2]))
    color_ids = list(range(1, len(masks) + 1)) if color_ids is None else [int(c) for c in color_ids]
    if len(color_ids) != len(masks) or (texts is not None and len(texts) != len(masks)):
        raise DataError(f"overlay: {len(masks)} masks but {len(color_ids)} colour ids / "
                        f"{'no' if texts is None else len(texts)} captions")
    if any(not 1 <= c <= 254 for c in color_ids):
        raise DataError(f"overlay: colour ids must lie in [1, 254], got {color_ids}")
    ids = np.zeros(image.shape[:2], dtype=np.int64)
    for mask, colour_id in zip(masks, color_ids):
        ids[mask] = colour_id
    palette = instance_palette()
    out = _blend(image, ids, palette, ids != 0, alpha, outline)
    if texts is None:
        return out
    visible = [ids == c for c in color_ids]
    return _draw_captions(out, visible, list(texts), [palette[c] for c in color_ids])


def overlay_classes(
    image: np.ndarray,
    labels: np.ndarray,
    dataset: str = "cityscapes",
    alpha: float = 0.5,
    outline: bool = False,
    label_names: bool = False,
) -> np.ndarray:
    """Colour a semantic label map (VSS class ids, 255 void) with ``dataset``'s official class colours.

    Args:
        image: ``(H, W, 3) uint8`` frame.
        labels: ``(H, W)`` class ids (Cityscapes trainIds 0..18 or CamVid 0..10; 255 = void, left as is).
        dataset: ``"cityscapes"`` or ``"camvid"``.
        alpha: weight of the colour.
        outline: draw class boundaries in the pure colour.
        label_names: write each present class name at its region's centroid.
    """
    labels = np.asarray(labels)
    _check_pair(image, labels)
    names = class_names(dataset)
    labels = labels.astype(np.int64)
    painted = labels != VOID_ID
    if painted.any() and (labels[painted].min() < 0 or labels[painted].max() >= len(names)):
        raise DataError(f"overlay: {dataset} class ids must lie in [0, {len(names) - 1}] or be 255, "
                        f"got [{labels[painted].min()}, {labels[painted].max()}]")
    palette = class_palette(dataset)
    out = _blend(image, labels, palette, painted, alpha, outline)
    if not label_names:
        return out
    present = [int(i) for i in np.unique(labels[painted])]
    return _draw_captions(out, [labels == i for i in present], [names[i] for i in present], [palette[i] for i in present])
