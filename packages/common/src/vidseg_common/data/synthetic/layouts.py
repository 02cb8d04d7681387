"""Per-video writers of the synthetic generator, one per dataset layout.

Each writer renders video ``index`` of split ``split`` and writes its files in the real layout; it
returns what the split-level index files need. Flow ``<root>/flow/<video>/<frame>.flo`` (forward
``t → t+1``; the last frame has none) is written for layouts whose stored frames are consecutive
video frames: DAVIS, YouTube-VOS (``*_all_frames``), Cityscapes snippets, CamVid video frames.
YouTube-VIS stores every 5th frame only and gets no flow.

Instance ids are compacted by first appearance on the stored (annotated) frames, so YouTube-VOS ids
follow the order in which objects enter. A scene where an object is never visible (or, for DAVIS,
not visible in frame 0) is re-drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vidseg_common.data.formats import camvid
from vidseg_common.data.formats.cityscapes import NAME_TO_LABEL_ID
from vidseg_common.data.formats.cityscapes_sequence import (
    SNIPPET_AFTER,
    SNIPPET_BEFORE,
    make_stem,
    write_cityscapes_snippet,
)
from vidseg_common.data.formats.common import write_rgb
from vidseg_common.data.formats.davis import write_davis_video
from vidseg_common.data.formats.flow import write_flo
from vidseg_common.data.formats.youtube_vis import build_youtube_vis_json
from vidseg_common.data.formats.youtube_vos import write_youtube_vos_video
from vidseg_common.data.synthetic.config import SyntheticConfig
from vidseg_common.data.synthetic.render import RenderedVideo, apply_corruptions, render_video
from vidseg_common.data.synthetic.scenes import (
    SEMANTIC_CLASSES,
    category_name,
    sample_instance_scene,
    sample_semantic_scene,
)
from vidseg_common.errors import DataError

MAX_ATTEMPTS = 50

CITYSCAPES_IDS = {"road": "road", "sidewalk": "sidewalk", "building": "building", "vegetation": "vegetation",
                  "sky": "sky", "pole": "pole", "car": "car", "person": "person", "void": "ego vehicle"}
CAMVID_IDS = {"road": "Road", "sidewalk": "Pavement", "building": "Building", "vegetation": "Tree", "sky": "Sky",
              "pole": "Pole", "car": "Car", "person": "Pedestrian"}


def _lut(mapping: dict[str, int]) -> np.ndarray:
    lut = np.full(256, 255, dtype=np.uint8)
    for i, name in enumerate(SEMANTIC_CLASSES):
        lut[i] = mapping.get(name, 255)
    return lut


CITYSCAPES_LUT = _lut({k: NAME_TO_LABEL_ID[v] for k, v in CITYSCAPES_IDS.items()})
"""Internal scene class → Cityscapes labelId."""
CAMVID_LUT = _lut({k: camvid.CLASS_NAMES.index(v) for k, v in CAMVID_IDS.items()})
"""Internal scene class → CamVid class id (void → 255)."""
def render_instance_video(
    cfg: SyntheticConfig, split_index: int, index: int, num_frames: int, stored: np.ndarray | None = None
) -> tuple[RenderedVideo, np.ndarray, list[int]]:
    """Render one VOS/VIS video; returns the video, compact ids ``(T, H, W) uint8`` and each id's category.

    ``stored`` are the indices of the frames that will be annotated (default all): every object must be
    visible on one of them, and ids are compacted by first appearance on them.
    """
    stored = np.arange(num_frames) if stored is None else stored
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([cfg.seed, split_index, index, attempt])
        scene = sample_instance_scene(rng, cfg, num_frames)
        video = render_video(scene.objects, scene.canvas_rgb, scene.canvas_label, scene.offsets,
                             num_frames, cfg.height, cfg.width, cfg.write_flow)
        n = len(scene.objects)
        present = np.zeros((len(stored), n + 1), dtype=bool)
        for j, t in enumerate(stored):
            present[j, np.unique(video.owner[t])] = True
        present = present[:, 1:]
        if not present.any(axis=0).all():
            continue
        if cfg.layout == "davis" and not present[0].all():
            continue
        first = present.argmax(axis=0)
        order = sorted(range(n), key=lambda i: (first[i], i))
        lut = np.zeros(256, dtype=np.uint8)
        for new_id, old in enumerate(order, start=1):
            lut[old + 1] = new_id
        apply_corruptions(video.frames, rng, cfg.corruption_prob, cfg.corruption_length)
        return video, lut[video.owner], [scene.objects[i].category for i in order]
    raise DataError(f"synthetic generator: could not place the objects of video {index} in {MAX_ATTEMPTS} attempts; "
                    "use fewer objects or larger frames")


def render_semantic_video(cfg: SyntheticConfig, split_index: int, index: int, num_frames: int) -> tuple[RenderedVideo, np.ndarray]:
    """Render one street scene; returns the video and internal class labels ``(T, H, W) uint8``."""
    rng = np.random.default_rng([cfg.seed, split_index, index, 0])
    scene = sample_semantic_scene(rng, cfg, num_frames)
    video = render_video(scene.objects, scene.canvas_rgb, scene.canvas_label, scene.offsets,
                         num_frames, cfg.height, cfg.width, cfg.write_flow)
    obj_labels = np.array([0] + [o.label for o in scene.objects], dtype=np.uint8)
    labels = np.where(video.owner > 0, obj_labels[video.owner], video.background_label)
    apply_corruptions(video.frames, rng, cfg.corruption_prob, cfg.corruption_length, cfg.corruption_strength)
    return video, labels


def write_flow(root: Path, video: str, frame_names: list[str], flow: np.ndarray | None) -> None:
    """Write ``flow (T-1, H, W, 2)`` as ``<root>/flow/<video>/<frame_t>.flo``."""
    if flow is None:
        return
    for name, f in zip(frame_names, flow):
        write_flo(root / "flow" / video / f"{name}.flo", f)




def _names(num_frames: int) -> list[str]:
    return [f"{t:05d}" for t in range(num_frames)]


def write_davis(cfg: SyntheticConfig, root: Path, split: str, split_index: int, index: int) -> dict[str, Any]:
    video, ids, _ = render_instance_video(cfg, split_index, index, cfg.num_frames)
    name, names = f"{split}-{index:03d}", _names(cfg.num_frames)
    write_davis_video(root, name, names, video.frames, ids, cfg.davis_resolution, jpeg_quality=cfg.jpeg_quality)
    write_flow(root, name, names, video.flow)
    return {"split": split, "video": name}


def write_youtube_vos(cfg: SyntheticConfig, root: Path, split: str, split_index: int, index: int) -> dict[str, Any]:
    sparse = np.arange(0, cfg.num_frames, cfg.frame_step)
    video, ids, cats = render_instance_video(cfg, split_index, index, cfg.num_frames, sparse)
    name, names = f"{split}{index:06d}", _names(cfg.num_frames)
    sparse_names = [names[t] for t in sparse]
    sparse_ids = ids[sparse]
    objects: dict[int, dict] = {}
    for k, cat in enumerate(cats, start=1):
        frames = [sparse_names[j] for j in range(len(sparse)) if (sparse_ids[j] == k).any()]
        objects[k] = {"category": category_name(cat, cfg.num_colors), "frames": frames}
    if split == "train":
        annotated, masks = sparse_names, sparse_ids
    else:  # valid: only the frame where objects first appear, holding only those objects
        annotated = sorted({o["frames"][0] for o in objects.values()})
        masks = np.stack([
            np.where(np.isin(sparse_ids[sparse_names.index(f)], [k for k, o in objects.items() if o["frames"][0] == f]),
                     sparse_ids[sparse_names.index(f)], 0)
            for f in annotated
        ]).astype(np.uint8)
    write_youtube_vos_video(root, split, name, sparse_names, video.frames[sparse], annotated, masks,
                            jpeg_quality=cfg.jpeg_quality)
    write_youtube_vos_video(root, split, name, names, video.frames, [], masks[:0], all_frames=True,
                            jpeg_quality=cfg.jpeg_quality)
    write_flow(root, name, names, video.flow)
    return {"split": split, "video": name, "objects": objects}


def write_youtube_vis(cfg: SyntheticConfig, root: Path, split: str, split_index: int, index: int) -> dict[str, Any]:
    sparse = np.arange(0, cfg.num_frames, cfg.frame_step)
    video, ids, cats = render_instance_video(cfg, split_index, index, cfg.num_frames, sparse)
    name = f"{split}{index:06d}"
    video_id = split_index * 100000 + index + 1
    file_names = [f"{name}/{t:05d}.jpg" for t in sparse]
    for t, file_name in zip(sparse, file_names):
        write_rgb(root / split / "JPEGImages" / file_name, video.frames[t], cfg.jpeg_quality)
    sparse_ids = ids[sparse]
    anns = []
    for k, cat in enumerate(cats, start=1):
        masks = sparse_ids == k
        anns.append({"video_id": video_id, "category_id": cat, "masks": masks, "valid": masks.any(axis=(1, 2))})
    built = build_youtube_vis_json([], {}, anns)["annotations"]
    info = {"id": video_id, "width": cfg.width, "height": cfg.height, "length": len(file_names),
            "file_names": file_names}
    return {"split": split, "video_info": info, "annotations": [{k: v for k, v in a.items() if k != "id"} for a in built]}


def write_cityscapes(cfg: SyntheticConfig, root: Path, split: str, split_index: int, index: int) -> dict[str, Any]:
    num_frames = SNIPPET_BEFORE + SNIPPET_AFTER + 1
    video, labels = render_semantic_video(cfg, split_index, index, num_frames)
    city = "aachen" if split == "train" else "frankfurt"
    label_ids = CITYSCAPES_LUT[labels[SNIPPET_BEFORE]]
    write_cityscapes_snippet(root, split, city, index, SNIPPET_BEFORE, video.frames, label_ids)
    write_flow(root, make_stem(city, index, SNIPPET_BEFORE), [make_stem(city, index, t) for t in range(num_frames)], video.flow)
    return {"split": split}


def write_camvid(cfg: SyntheticConfig, root: Path, split: str, split_index: int, index: int) -> dict[str, Any]:
    sequence = ("0006R0", "0016E5")[index] if split == "train" else ("0001TP", "Seq05VD")[index]
    list_split = split if split == "train" or index == 0 else "test"
    video, labels = render_semantic_video(cfg, split_index, index, cfg.num_frames)
    first = 1
    camvid.write_camvid_sequence(root, sequence, first, video.frames)
    offset = camvid.VIDEO_INDEX_OFFSET[sequence]
    for t in range(cfg.frame_step, cfg.num_frames, cfg.frame_step):
        stem = camvid.label_stem(sequence, first + t - offset)
        camvid.write_camvid_label(root, list_split, stem, video.frames[t], CAMVID_LUT[labels[t]])
    write_flow(root, sequence, [camvid.video_frame_name(sequence, first + t) for t in range(cfg.num_frames)], video.flow)
    return {"split": split}


WRITERS: dict[str, Callable[[SyntheticConfig, Path, str, int, int], dict[str, Any]]] = {
    "davis": write_davis,
    "youtube_vos": write_youtube_vos,
    "youtube_vis": write_youtube_vis,
    "cityscapes": write_cityscapes,
    "camvid": write_camvid,
}
