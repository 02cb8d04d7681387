"""Options of the synthetic video generator (every knob of ``vidseg synth``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from vidseg_common.errors import ConfigError

LAYOUTS = ("davis", "youtube_vos", "youtube_vis", "cityscapes", "camvid")
_LATER_OPTIONS = {"corruption_strength": 1.0, "pole_width": 0}
"""Options added after datasets were first cached, with the defaults that reproduce the earlier output."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator options.

    Attributes:
        layout: on-disk layout to write: ``davis``, ``youtube_vos``, ``youtube_vis``, ``cityscapes``, ``camvid``.
        num_videos: training videos (snippets for Cityscapes; CamVid has at most 2 training sequences).
        num_val_videos: validation videos.
        num_frames: frames per video (dense; Cityscapes always writes 30-frame snippets).
        height: frame height in pixels.
        width: frame width in pixels.
        min_objects: fewest objects per video (foreground objects for VOS/VIS, moving agents for VSS).
        max_objects: most objects per video.
        num_shapes: shape families (circle, square, triangle, diamond, ellipse, cross); categories are shape × colour.
        num_colors: colour families (red, green, blue, yellow, purple, cyan).
        similar_distractor: make the last object of each video a copy of the first one's category.
        max_speed: largest translation speed, as a fraction of the frame width per frame.
        max_rotation: largest rotation speed in radians per frame.
        scale_amplitude: relative amplitude of the periodic scale change.
        full_occlusion: one object passes fully behind a larger one mid-video and reappears.
        late_entry: objects may enter after frame 0 (not allowed for the DAVIS layout, whose objects are all in frame 0).
        camera_speed: background pan speed in pixels per frame (integer part used).
        corruption_prob: probability that a corruption burst (noise, blur or brightness) starts at a frame.
        corruption_length: frames per burst.
        corruption_strength: severity k of the corruptions of semantic (Cityscapes/CamVid) layouts (unused by the
            others): noise σ = 40·k, blur σ = 4·k, brightness factor 0.3^k or 1.8^k (k = 1: the original bursts;
            the random draws do not depend on k).
        pole_width: width in pixels of the poles of semantic (Cityscapes/CamVid) scenes; 0 = ``max(width // 80, 2)``
            (the original rule: 2 px at 128 px wide, thinner than one stride-8 cell of a segmentation model).
        frame_step: annotation step of sparse layouts (YouTube-VOS/VIS every 5th frame, CamVid label step).
        davis_resolution: DAVIS resolution folder to write (``480p`` or ``Full-Resolution``).
        write_flow: also write ground-truth forward flow ``flow/<video>/<frame>.flo``.
        jpeg_quality: JPEG quality of the frames.
        seed: random seed; the same options give the same bytes.
    """

    layout: str = "davis"
    num_videos: int = 3
    num_val_videos: int = 2
    num_frames: int = 10
    height: int = 96
    width: int = 160
    min_objects: int = 1
    max_objects: int = 3
    num_shapes: int = 4
    num_colors: int = 4
    similar_distractor: bool = False
    max_speed: float = 0.02
    max_rotation: float = 0.05
    scale_amplitude: float = 0.15
    full_occlusion: bool = False
    late_entry: bool = False
    camera_speed: float = 0.0
    corruption_prob: float = 0.0
    corruption_length: int = 2
    corruption_strength: float = 1.0
    pole_width: int = 0
    frame_step: int = 5
    davis_resolution: str = "480p"
    write_flow: bool = True
    jpeg_quality: int = 95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"synthetic layout {self.layout!r} is not one of {LAYOUTS}")
        for name in ("num_frames", "height", "width", "min_objects", "num_shapes", "num_colors", "frame_step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"synthetic option {name} must be ≥ 1, got {getattr(self, name)}")
        if self.num_videos < 0 or self.num_val_videos < 0 or self.num_videos + self.num_val_videos < 1:
            raise ConfigError("synthetic options num_videos/num_val_videos must be ≥ 0 and not both 0")
        if self.max_objects < self.min_objects:
            raise ConfigError(f"synthetic option max_objects={self.max_objects} < min_objects={self.min_objects}")
        if self.num_shapes > 6 or self.num_colors > 6:
            raise ConfigError("synthetic options num_shapes and num_colors are at most 6")
        if self.height < 32 or self.width < 32:
            raise ConfigError(f"synthetic frames must be at least 32×32, got {self.width}×{self.height}")
        if self.layout == "davis" and self.late_entry:
            raise ConfigError("late_entry is not possible with the DAVIS layout: DAVIS needs every object in frame 0")
        if self.layout == "camvid" and (self.num_videos > 2 or self.num_val_videos > 2):
            raise ConfigError("the CamVid layout has 4 sequences: at most 2 train and 2 val/test videos")
        if self.davis_resolution not in ("480p", "Full-Resolution"):
            raise ConfigError(f"davis_resolution must be '480p' or 'Full-Resolution', got {self.davis_resolution!r}")
        if self.corruption_strength <= 0 or self.pole_width < 0:
            raise ConfigError(f"synthetic options need corruption_strength > 0 and pole_width >= 0, got "
                              f"{self.corruption_strength}, {self.pole_width}")
        if not 0.0 <= self.corruption_prob <= 1.0:
            raise ConfigError(f"corruption_prob must lie in [0, 1], got {self.corruption_prob}")

    def to_dict(self) -> dict:
        """All options, except those of :data:`_LATER_OPTIONS` left at their default: the record
        (``synthetic.json``) and the cache key of a dataset that does not use them stay as they were
        before these options existed."""
        return {k: v for k, v in dataclasses.asdict(self).items() if _LATER_OPTIONS.get(k, object()) != v}

    def cache_key(self) -> str:
        """A short hash of the options of :meth:`to_dict` (the cache folder name)."""
        blob = json.dumps({"version": 1, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
