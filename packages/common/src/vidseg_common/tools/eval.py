"""``vidseg eval``: score a results folder / JSON against ground truth like the official tools, fast.

Targets:

* ``davis``: davis2017-evaluation (semi-supervised or unsupervised), same global and per-sequence
  tables, CSV (``global_results-<subset>.csv``, ``per-sequence_results-<subset>.csv``) and JSON output;
* ``youtube-vis``: youtubevos/cocoapi ``YTVOSeval`` (segm), the 12-line COCO summary, JSON output;
* ``youtube-vos``: the local J/F/G proxy of :mod:`vidseg_common.metrics.ytvos` (not the server's G);
* ``cityscapes`` / ``camvid``: mIoU over the whole split (:mod:`vidseg_common.metrics.vss`).

Videos are scored in a process pool (``--workers``, default: all cores); each worker runs torch with
one thread. Bad input (RGB PNGs, missing/extra frames, extra objects, size mismatches, malformed
results JSON) stops the run with a one-line error naming the file or video.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from vidseg_common.errors import ConfigError
from vidseg_common.io import atomic_write_text

HELP = "score results against ground truth (davis, youtube-vos, youtube-vis, cityscapes, camvid)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    davis = sub.add_parser("davis", help="DAVIS-2017 J&F (davis2017-evaluation)")
    davis.add_argument("--gt", required=True, type=Path, help="DAVIS root (ImageSets/, Annotations/)")
    davis.add_argument("--results", required=True, type=Path, help="folder of <seq>/<frame>.png predictions")
    davis.add_argument("--subset", default="val")
    davis.add_argument("--year", default="2017")
    davis.add_argument("--resolution", default="480p")
    davis.add_argument("--protocol", default="semi-supervised", choices=("semi-supervised", "unsupervised"))
    davis.add_argument("--csv", type=Path, help="folder for the two CSV tables (official names)")
    _common(davis)
    vis = sub.add_parser("youtube-vis", help="YouTube-VIS video AP/AR (youtubevos/cocoapi YTVOSeval)")
    vis.add_argument("--gt", required=True, type=Path, help="dataset JSON with annotations")
    vis.add_argument("--results", required=True, type=Path, help="results JSON (list of detections)")
    _common(vis)
    vos = sub.add_parser("youtube-vos", help="YouTube-VOS J/F seen/unseen and G (local proxy, not the server's G)")
    vos.add_argument("--gt", required=True, type=Path, help="split folder with Annotations/ and meta.json")
    vos.add_argument("--results", required=True, type=Path, help="folder of <video>/<frame>.png predictions")
    vos.add_argument("--unseen", type=Path, help="text file: unseen category names, one per line (default: none)")
    _common(vos)
    for name, split in (("cityscapes", "val"), ("camvid", "test")):
        sem = sub.add_parser(name, help=f"{name} mIoU over the whole split (per-class IoU)")
        sem.add_argument("--gt", required=True, type=Path, help=f"{name} root")
        sem.add_argument("--results", required=True, type=Path, help="folder of label PNGs")
        sem.add_argument("--split", default=split)
        if name == "cityscapes":
            sem.add_argument("--label-ids", action="store_true", help="predictions hold labelIds, not trainIds")
        _common(sem)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    parser.add_argument("--workers", type=int, default=0, help="processes (default 0 = all cores)")
    parser.add_argument("--quiet", action="store_true", help="do not print the tables")


def run(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise ConfigError(f"--workers={args.workers} must be ≥ 0")
    if args.dataset == "davis":
        return _run_davis(args)
    if args.dataset == "youtube-vis":
        return _run_youtube_vis(args)
    if args.dataset == "youtube-vos":
        return _run_youtube_vos(args)
    return _run_semantic(args)


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``map(fn, items)`` in order, over a process pool when ``workers != 1`` (0 = all cores)."""
    items = list(items)
    workers = min(workers or os.cpu_count() or 1, len(items))
    if workers <= 1:
        yield from map(fn, items)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_init_worker) as pool:
        yield from pool.map(fn, items, chunksize=1)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _davis_job(job: tuple[str, str, str, str, str]) -> tuple[str, Any, Any, Any]:
    import torch

    from vidseg_common.metrics.davis_folder import load_gt, load_prediction
    from vidseg_common.metrics.jandf import score_video

    gt_root, results, seq, resolution, protocol = job
    gt, names = load_gt(gt_root, seq, resolution)
    optional = frozenset({0, len(names) - 1}) if protocol == "semi-supervised" else frozenset()
    pred = load_prediction(results, seq, names, gt.shape[1:], optional)
    objects, j, f = score_video(torch.from_numpy(gt), torch.from_numpy(pred), seq, protocol)  # type: ignore[arg-type]
    return seq, objects.numpy(), j.numpy(), f.numpy()


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    """Right-aligned columns with 6-decimal floats (the look of the official ``DataFrame.to_string``)."""
    cells = [header] + [[f"{v:.6f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(" ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)


def _run_davis(args: argparse.Namespace) -> int:
    import torch

    from vidseg_common.metrics.davis_folder import davis_sequences
    from vidseg_common.metrics.jandf import GLOBAL_COLUMNS, JandF

    seqs = davis_sequences(args.gt, args.subset, args.year)
    jobs = [(str(args.gt), str(args.results), s, args.resolution, args.protocol) for s in seqs]
    metric = JandF(protocol=args.protocol)
    for seq, objects, j, f in parallel_map(_davis_job, jobs, args.workers):
        metric.add_scores(seq, torch.from_numpy(objects), torch.from_numpy(j), torch.from_numpy(f))
    glob = {k: float(v) for k, v in metric.compute().items()}
    per_object = metric.per_object_table()
    order = {s: i for i, s in enumerate(seqs)}
    names = sorted(per_object, key=lambda n: (order[n.rsplit("_", 1)[0]], int(n.rsplit("_", 1)[1])))
    seq_rows = [[n, per_object[n]["J-Mean"], per_object[n]["F-Mean"]] for n in names]
    if not args.quiet:
        print(f"--------------------------- Global results for {args.subset} ---------------------------")
        print(format_table(list(GLOBAL_COLUMNS), [[glob[c] for c in GLOBAL_COLUMNS]]))
        print(f"\n---------- Per sequence results for {args.subset} ----------")
        print(format_table(["Sequence", "J-Mean", "F-Mean"], seq_rows))
    if args.csv:
        header = ",".join(GLOBAL_COLUMNS)
        atomic_write_text(args.csv / f"global_results-{args.subset}.csv",
                          header + "\n" + ",".join(f"{glob[c]:.3f}" for c in GLOBAL_COLUMNS) + "\n")  # fmt: skip
        lines = ["Sequence,J-Mean,F-Mean"] + [f"{n},{j:.3f},{f:.3f}" for n, j, f in seq_rows]
        atomic_write_text(args.csv / f"per-sequence_results-{args.subset}.csv", "\n".join(lines) + "\n")
    if args.json:
        payload = {"global": glob, "per_object": {n: per_object[n] for n in names},
                   "source": f"vidseg eval davis ({args.protocol}, {args.subset})"}  # fmt: skip
        atomic_write_text(args.json, json.dumps(payload, indent=1) + "\n")
    return 0


def _vis_job(job: tuple[Any, Any]) -> dict[str, Any]:
    from vidseg_common.metrics.vis import reduce_video

    gt, dt = job
    return reduce_video(gt, dt)


_SUMMARY = [  # (AP or AR, IoU label, area, maxDets) in the official order
    ("Precision", "0.50:0.95", "all", 100), ("Precision", "0.50", "all", 100), ("Precision", "0.75", "all", 100),
    ("Precision", "0.50:0.95", "small", 100), ("Precision", "0.50:0.95", "medium", 100),
    ("Precision", "0.50:0.95", "large", 100), ("Recall", "0.50:0.95", "all", 1), ("Recall", "0.50:0.95", "all", 10),
    ("Recall", "0.50:0.95", "all", 100), ("Recall", "0.50:0.95", "small", 100),
    ("Recall", "0.50:0.95", "medium", 100), ("Recall", "0.50:0.95", "large", 100),
]  # fmt: skip


def _run_youtube_vis(args: argparse.Namespace) -> int:
    from vidseg_common.metrics.vis import STAT_NAMES, VideoAP
    from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results

    videos, categories = load_ground_truth(args.gt)
    dets = load_results(args.results, videos, categories)
    metric = VideoAP()
    jobs = [(videos[v], dets[v]) for v in sorted(videos)]
    for tables in parallel_map(_vis_job, jobs, args.workers):
        metric.add_tables(tables)
    stats = {k: float(v) for k, v in metric.compute().items()}
    if not args.quiet:
        for (kind, iou, area, max_det), name in zip(_SUMMARY, STAT_NAMES):
            title, short = ("Average Precision", "(AP)") if kind == "Precision" else ("Average Recall", "(AR)")
            print(f" {title:<18} {short} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_det:>3d} ] = {stats[name]:0.3f}")
    if args.json:
        payload = {"stats": stats, "order": list(STAT_NAMES), "source": "vidseg eval youtube-vis"}
        atomic_write_text(args.json, json.dumps(payload, indent=1) + "\n")
    return 0


def _run_youtube_vos(args: argparse.Namespace) -> int:
    import torch

    from vidseg_common.metrics.ytvos import SCORE_NAMES, YouTubeVOSScore
    from vidseg_common.metrics.ytvos_folder import read_meta, score_folder_video

    meta = read_meta(args.gt)
    unseen = set(args.unseen.read_text().split("\n")) - {""} if args.unseen else set()
    jobs = [(str(args.gt), str(args.results), v, {o: c not in unseen for o, c in objs.items()}) for v, objs in sorted(meta.items())]
    metric = YouTubeVOSScore()
    for video, objects in parallel_map(score_folder_video, jobs, args.workers):
        for obj, (frames, j, f, seen) in objects.items():
            metric.add_object_scores(video, obj, torch.from_numpy(frames), torch.from_numpy(j), torch.from_numpy(f), seen)
    scores = {k: float(v) for k, v in metric.compute().items()}
    if not args.quiet:
        print("YouTube-VOS local proxy (annotated frames after each object's first appearance; not the server's G)")
        print(format_table(list(SCORE_NAMES), [[scores[n] for n in SCORE_NAMES]]))
    if args.json:
        atomic_write_text(args.json, json.dumps({"scores": scores, "source": "vidseg eval youtube-vos (proxy)"}, indent=1) + "\n")
    return 0


def _cityscapes_job(job: tuple[tuple[str, str, str], bool]) -> Any:
    from vidseg_common.metrics.vss_folder import cityscapes_confusion

    return cityscapes_confusion(job[0], label_ids=job[1])


def _run_semantic(args: argparse.Namespace) -> int:
    import torch

    from vidseg_common.metrics import vss_folder
    from vidseg_common.metrics.vss import SegmentationIoU

    if args.dataset == "cityscapes":
        from vidseg_common.data.formats.cityscapes import NUM_CLASSES, TRAIN_ID_NAMES

        names = list(TRAIN_ID_NAMES)
        jobs = [(job, args.label_ids) for job in vss_folder.cityscapes_jobs(args.gt, args.results, args.split)]
        fn: Callable[[Any], Any] = _cityscapes_job
    else:
        from vidseg_common.data.formats.camvid import CLASS_NAMES, NUM_CLASSES

        names = list(CLASS_NAMES)
        jobs = vss_folder.camvid_jobs(args.gt, args.results, args.split)
        fn = vss_folder.camvid_confusion
    metric = SegmentationIoU(num_classes=NUM_CLASSES, class_names=names)
    total = sum(parallel_map(fn, jobs, args.workers))
    metric.confmat += torch.as_tensor(total, dtype=metric.confmat.dtype)
    metric._update_count += 1
    result = metric.compute()
    per_class = {n: (None if math.isnan(v) else v) for n, v in zip(names, result["IoU"].tolist())}
    if not args.quiet:
        print(format_table(["class", "IoU"], [[n, float("nan") if v is None else v] for n, v in per_class.items()]))
        print(f"mIoU ({args.dataset} {args.split}, {len(jobs)} images, NaN classes excluded): {float(result['mIoU']):.6f}")
    if args.json:
        payload = {"mIoU": float(result["mIoU"]), "IoU": per_class, "images": len(jobs), "source": f"vidseg eval {args.dataset}"}
        atomic_write_text(args.json, json.dumps(payload, indent=1) + "\n")
    return 0
