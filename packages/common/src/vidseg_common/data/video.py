"""In-memory video records returned by the readers (numpy, before any tensor conversion)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class VOSVideo:
    """One VOS video.

    Attributes:
        name: video id (folder name).
        frame_names: ``T`` frame stems (``"00000"``).
        frames: ``(T, H, W, 3) uint8`` RGB.
        masks: ``(T, H, W) uint8`` object ids (0 bg, 1..K, 255 void); all-255 where not annotated.
        annotated: ``(T,) bool``, which frames carry an annotation.
        num_objects: ``K``.
        first_frame: ``{object id: index of the frame where it is first annotated}``.
    """

    name: str
    frame_names: list[str]
    frames: np.ndarray
    masks: np.ndarray
    annotated: np.ndarray
    num_objects: int
    first_frame: dict[int, int] = field(default_factory=dict)


@dataclass
class VISInstance:
    """One YouTube-VIS instance track.

    Attributes:
        category_id: dataset category id.
        masks: ``(T, H, W) bool``.
        valid: ``(T,) bool``, False where the annotation is null.
        instance_id: annotation id in the dataset JSON.
    """

    category_id: int
    masks: np.ndarray
    valid: np.ndarray
    instance_id: int = 0


@dataclass
class VISVideo:
    """One YouTube-VIS video: ``frames (T, H, W, 3) uint8`` and its instance tracks."""

    video_id: int
    file_names: list[str]
    frames: np.ndarray
    instances: list[VISInstance]


@dataclass
class VSSSample:
    """One video-semantic-segmentation sample: frames ``(T+1, H, W, 3) uint8`` (last annotated), label ``(H, W)``."""

    name: str
    frame_names: list[str]
    frames: np.ndarray
    label: np.ndarray
