"""Per-image confusion matrices for ``vidseg eval cityscapes|camvid`` (whole-split mIoU, docs/reference/vss.md §3.2).

* Cityscapes: GT ``<root>/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png`` mapped to trainIds with
  ``vidseg_common.data.formats.cityscapes`` (255 = ignore); predictions ``<results>/<city>/<stem>*.png``
  (or directly in ``<results>``) holding trainIds, or labelIds with ``label_ids=True``, at full resolution.
* CamVid: GT ``<root>/<split>annot/<stem>.png`` (SegNet ids, 11 = void → 255); predictions
  ``<results>/<stem>.png`` with class ids 0..10.

A prediction that is missing, ambiguous, RGB, of another size, or holds ids ≥ C raises a
:class:`DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidseg_common.data.formats.png import read_index_png
from vidseg_common.errors import DataError


def confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int, where: str, ignore_index: int = 255) -> np.ndarray:
    """``(C, C) int64`` confusion matrix (rows = GT) of one image; GT ``ignore_index`` is skipped."""
    if gt.shape != pred.shape:
        raise DataError(f"{where}: prediction size {pred.shape} differs from the ground truth {gt.shape}")
    keep = gt != ignore_index
    bad = pred[keep] >= num_classes
    if bad.any():
        raise DataError(f"{where}: prediction holds class id {int(pred[keep][bad].max())} ≥ {num_classes}")
    index = gt[keep].astype(np.int64) * num_classes + pred[keep]
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def cityscapes_jobs(gt_root: str | Path, results: str | Path, split: str) -> list[tuple[str, str, str]]:
    """(GT file, prediction file, stem) for every annotated image of the split."""
    gt_dir = Path(gt_root) / "gtFine" / split
    gt_files = sorted(gt_dir.glob("*/*_gtFine_labelIds.png"))
    if not gt_files:
        raise DataError(f"{gt_dir}: no *_gtFine_labelIds.png files")
    results = Path(results)
    jobs = []
    for gt in gt_files:
        stem = gt.name[: -len("_gtFine_labelIds.png")]
        city = stem.split("_")[0]
        found = sorted(results.glob(f"{city}/{stem}*.png")) or sorted(results.glob(f"{stem}*.png"))
        if len(found) != 1:
            what = "no prediction" if not found else f"{len(found)} predictions ({', '.join(p.name for p in found)})"
            raise DataError(f"{results}: {what} for {stem} (expected {city}/{stem}*.png)")
        jobs.append((str(gt), str(found[0]), stem))
    return jobs


def cityscapes_confusion(job: tuple[str, str, str], label_ids: bool = False) -> np.ndarray:
    """Confusion matrix of one Cityscapes image in trainIds."""
    from vidseg_common.data.formats.cityscapes import LABEL_TO_TRAIN_ID, NUM_CLASSES

    gt_path, pred_path, _ = job
    gt = LABEL_TO_TRAIN_ID[read_index_png(gt_path)]
    pred = read_index_png(pred_path)
    if label_ids:
        pred = LABEL_TO_TRAIN_ID[pred]
        pred = np.where(pred == 255, NUM_CLASSES, pred)  # labelIds outside the 19 classes count as wrong
        counts = confusion(gt, np.minimum(pred, NUM_CLASSES), NUM_CLASSES + 1, pred_path)
        return counts[:NUM_CLASSES, :NUM_CLASSES]
    return confusion(gt, pred, NUM_CLASSES, pred_path)


def camvid_jobs(gt_root: str | Path, results: str | Path, split: str) -> list[tuple[str, str, str]]:
    """(GT file, prediction file, stem) for every label of the CamVid split."""
    label_dir = Path(gt_root) / f"{split}annot"
    labels = sorted(label_dir.glob("*.png"))
    if not labels:
        raise DataError(f"{label_dir}: no CamVid label PNGs")
    jobs = []
    for label in labels:
        pred = Path(results) / label.name
        if not pred.is_file():
            raise DataError(f"{pred}: prediction missing for CamVid label {label.stem}")
        jobs.append((str(label), str(pred), label.stem))
    return jobs


def camvid_confusion(job: tuple[str, str, str]) -> np.ndarray:
    """Confusion matrix of one CamVid label (11 classes, void ignored)."""
    from vidseg_common.data.formats.camvid import NUM_CLASSES, SEGNET_VOID_ID, segnet_to_ids

    gt_path, pred_path, _ = job
    raw = read_index_png(gt_path)
    if raw.max(initial=0) > SEGNET_VOID_ID:
        raise DataError(f"{gt_path}: CamVid label values must be 0..{SEGNET_VOID_ID}, found {int(raw.max())}")
    return confusion(segnet_to_ids(raw), read_index_png(pred_path), NUM_CLASSES, pred_path)
