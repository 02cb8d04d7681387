"""Turn prediction files into rendered overlay frames, one video at a time (what ``vidseg visualize`` draws).

* VOS: DAVIS-layout palette PNGs ``<pred>/<video>/<frame>.png`` over ``<images>/<video>/<frame>.jpg``
  (``<images>`` may also be a DAVIS root: ``JPEGImages/480p`` is then used).
* VIS: a YouTube-VIS results JSON (``video_id, category_id, score, segmentations``) over the frames and
  categories of the dataset JSON; predictions under ``score_threshold`` are dropped.
* VSS: label PNGs (class ids) anywhere under ``<pred>`` over the frame ``<stem>.{jpg,png}`` or
  ``<stem>_leftImg8bit.png`` anywhere under ``<images>`` (CamVid / Cityscapes; GT names
  ``<stem>_gtFine_labelTrainIds.png`` work too);
  one "video" per sub-folder of ``<pred>`` (a city for Cityscapes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidseg_common.data.formats.common import read_rgb
from vidseg_common.data.formats.png import read_index_png
from vidseg_common.errors import DataError
from vidseg_common.viz.overlay import overlay_classes, overlay_ids, overlay_instances

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

RenderedVideo = tuple[str, list[np.ndarray]]
"""``(video name, frames (H, W, 3) uint8)``."""


def _frame_for(folder: Path, stem: str, mask_path: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise DataError(f"{mask_path}: no frame {stem}.jpg/.png in {folder}")


def _read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    ids = read_index_png(path)
    if ids.shape != size:
        raise DataError(f"{path}: mask size {ids.shape} differs from its frame's size {size}")
    return ids


def render_vos(pred_root: str | Path, images: str | Path, videos: list[str] | None = None, alpha: float = 0.5,
               label_ids: bool = True) -> Iterator[RenderedVideo]:
    """Overlay DAVIS-layout predictions (object ids, DAVIS palette, id numbers drawn) on their frames."""
    pred_root, image_root = Path(pred_root), Path(images)
    if not pred_root.is_dir():
        raise DataError(f"{pred_root}: VOS prediction folder not found")
    if (image_root / "JPEGImages" / "480p").is_dir():
        image_root = image_root / "JPEGImages" / "480p"
    names = videos or sorted(p.name for p in pred_root.iterdir() if p.is_dir())
    if not names:
        raise DataError(f"{pred_root}: no <video>/ folders of PNG masks")
    for video in names:
        masks = sorted((pred_root / video).glob("*.png"))
        if not masks:
            raise DataError(f"{pred_root / video}: no PNG masks")
        frames = []
        for mask_path in masks:
            image = read_rgb(_frame_for(image_root / video, mask_path.stem, mask_path))
            ids = _read_mask(mask_path, image.shape[:2])
            try:
                frames.append(overlay_ids(image, ids, alpha=alpha, label_ids=label_ids))
            except DataError as err:
                raise DataError(f"{mask_path}: {err}") from err
        yield video, frames


def _load_results(path: Path) -> list[dict]:
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise DataError(f"{path}: results JSON not found") from err
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(results, list):
        raise DataError(f"{path}: a YouTube-VIS results file is a JSON list, got {type(results).__name__}")
    for idx, item in enumerate(results):
        missing = [k for k in ("video_id", "category_id", "score", "segmentations") if not isinstance(item, dict) or k not in item]
        if missing:
            raise DataError(f"{path}: result {idx} lacks {missing}")
    return results


def render_vis(results_json: str | Path, dataset_json: str | Path, image_root: str | Path,
               score_threshold: float = 0.3, videos: list[int] | None = None, alpha: float = 0.5,
               max_instances: int = 20) -> Iterator[RenderedVideo]:
    """Overlay YouTube-VIS predictions (colour per prediction, caption ``"<rank> <class> <score>"``).

    Predictions of a video are ranked by score (rank 1 = highest); the ``max_instances`` best above
    ``score_threshold`` are drawn, the best on top.
    """
    from vidseg_common.data.formats.youtube_vis import YouTubeVISReader, decode_segmentation

    results_path = Path(results_json)
    results = _load_results(results_path)
    reader = YouTubeVISReader(dataset_json, image_root)
    by_video: dict[int, list[dict]] = {}
    for idx, item in enumerate(results):
        video_id = int(item["video_id"])
        if video_id not in reader.videos:
            raise DataError(f"{results_path}: result {idx} refers to video_id {video_id}, not in {reader.json_path}")
        if int(item["category_id"]) not in reader.categories:
            raise DataError(f"{results_path}: result {idx} has category_id {item['category_id']}, not in {reader.json_path}")
        by_video.setdefault(video_id, []).append(item)
    for video_id in videos or reader.video_ids():
        if video_id not in reader.videos:
            raise DataError(f"{reader.json_path}: no video with id {video_id}")
        info = reader.videos[video_id]
        height, width, length = int(info["height"]), int(info["width"]), int(info["length"])
        ranked = sorted(by_video.get(video_id, []), key=lambda r: -float(r["score"]))
        kept = [r for r in ranked if float(r["score"]) >= score_threshold][:max_instances]
        for r in kept:
            if len(r["segmentations"]) != length:
                raise DataError(f"{results_path}: a result of video {video_id} has {len(r['segmentations'])} "
                                f"segmentations for {length} frames")
        frames = []
        for t in range(length):
            image = reader.read_frames(video_id, [t])[0]
            masks, texts, colour_ids = [], [], []
            for rank, r in reversed(list(enumerate(kept, start=1))):  # lowest score first: the best ends on top
                mask = decode_segmentation(r["segmentations"][t], height, width, f"{results_path} video {video_id} frame {t}")
                masks.append(np.zeros((height, width), bool) if mask is None else mask)
                texts.append(f"{rank} {reader.categories[int(r['category_id'])]} {float(r['score']):.2f}")
                colour_ids.append(rank)
            stack = np.stack(masks) if masks else np.zeros((0, height, width), bool)
            frames.append(overlay_instances(image, stack, texts, colour_ids, alpha=alpha))
        yield str(info["file_names"][0]).split("/")[0] if info["file_names"] else str(video_id), frames


def render_vss(pred_root: str | Path, images: str | Path, dataset: str = "cityscapes", alpha: float = 0.5,
               label_ids: bool = False, pattern: str = "*.png") -> Iterator[RenderedVideo]:
    """Overlay VSS label PNGs (class ids; Cityscapes labelIds with ``label_ids=True``) in the class colours.

    ``pattern`` selects the label files under ``pred_root`` (e.g. ``*_gtFine_labelTrainIds.png`` for GT).
    """
    from vidseg_common.data.formats.camvid import SEGNET_VOID_ID
    from vidseg_common.data.formats.cityscapes import label_ids_to_train_ids

    pred_root, image_root = Path(pred_root), Path(images)
    if not pred_root.is_dir():
        raise DataError(f"{pred_root}: VSS prediction folder not found")
    if not image_root.is_dir():
        raise DataError(f"{image_root}: image folder not found")
    labels = sorted(pred_root.rglob(pattern))
    if not labels:
        raise DataError(f"{pred_root}: no label PNGs matching {pattern!r}")
    index: dict[str, Path] = {}
    for path in sorted(image_root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(path.stem, path)
    groups: dict[str, list[Path]] = {}
    for path in labels:
        groups.setdefault(str(path.parent.relative_to(pred_root)), []).append(path)
    for group, paths in groups.items():
        frames = []
        for path in paths:
            stem = path.stem.removesuffix("_gtFine_labelTrainIds").removesuffix("_gtFine_labelIds")
            frame = index.get(stem) or index.get(f"{stem}_leftImg8bit")
            if frame is None:
                raise DataError(f"{path}: no frame {stem}.jpg/.png or {stem}_leftImg8bit.png under {image_root}")
            image = read_rgb(frame)
            ids = _read_mask(path, image.shape[:2])
            if label_ids:
                ids = label_ids_to_train_ids(ids)
            elif dataset == "camvid":
                ids = np.where(ids == SEGNET_VOID_ID, 255, ids)  # GT label PNGs: SegNet void 11 → 255
            try:
                frames.append(overlay_classes(image, ids, dataset, alpha=alpha))
            except DataError as err:
                raise DataError(f"{path}: {err}") from err
        yield ("all" if group == "." else group.replace("/", "_")), frames
