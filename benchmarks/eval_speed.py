"""Speed of ``vidseg eval davis`` / ``vidseg eval youtube-vis`` vs a straightforward per-frame numpy version.

Generates a synthetic DAVIS-val-sized set (default 30 videos × 70 frames × 480×854, 2 moving ellipses;
predictions = jittered ellipses) and a YouTube-VIS-val-sized set (default 302 videos × 36 frames at
360×640, 1–3 instances, 10 detections per video) in a temporary folder, then times, in one run:

* ``baseline``: a single-process, per-frame, per-object numpy implementation of the same spec
  (davis2017-evaluation's algorithm: PIL reads, numpy seg2bmap, ``cv2.dilate`` with the disk, numpy
  statistics; for YouTube-VIS: RLE decode per frame and numpy intersections/unions per pair, then the
  same COCO matching/accumulation code);
* ``vidseg eval``: our command (process pool over videos, sparse boundary matching on object crops;
  RLE-level IoUs).

Both must give the same numbers (checked); the ratio is printed. Usage::

    python benchmarks/eval_speed.py [--videos 30 --frames 70] [--workers 0] [--skip-vis]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from vidseg_common.data.formats.png import write_index_png


def ellipse(height: int, width: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.ogrid[:height, :width]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _write_davis_video(job: tuple[str, int, int, int, int, int]) -> None:
    root, v, frames, height, width, objects = job
    rng = np.random.default_rng(v)
    seq = f"vid{v:03d}"
    params = [(rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width, rng.uniform(30, 90), rng.uniform(40, 120),
               rng.uniform(-2, 2), rng.uniform(-3, 3)) for _ in range(objects)]  # fmt: skip
    for t in range(frames):
        gt = np.zeros((height, width), np.uint8)
        pred = np.zeros((height, width), np.uint8)
        for o, (cy, cx, ry, rx, vy, vx) in enumerate(params, start=1):
            gt[ellipse(height, width, cy + vy * t, cx + vx * t, ry, rx)] = o
            jitter = rng.normal(0, 3, 4)
            if rng.random() > 0.05:  # the tracker sometimes loses the object
                pred[ellipse(height, width, cy + vy * t + jitter[0], cx + vx * t + jitter[1], ry + jitter[2], rx + jitter[3])] = o
        write_index_png(Path(root) / "gt" / "Annotations" / "480p" / seq / f"{t:05d}.png", gt)
        write_index_png(Path(root) / "res" / seq / f"{t:05d}.png", pred)


def make_davis(root: Path, videos: int, frames: int, height: int, width: int, objects: int, workers: int) -> None:
    (root / "gt" / "ImageSets" / "2017").mkdir(parents=True)
    (root / "gt" / "ImageSets" / "2017" / "val.txt").write_text("".join(f"vid{v:03d}\n" for v in range(videos)))
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_davis_video, [(str(root), v, frames, height, width, objects) for v in range(videos)]))


# ----------------------------------------------------------------------------- DAVIS baseline (numpy)
def _seg2bmap(seg: np.ndarray) -> np.ndarray:
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[:, :-1], s[:-1, :], se[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _f_measure(fg: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    r = int(np.ceil(bound_th * np.linalg.norm(fg.shape)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = (yy**2 + xx**2 <= r * r).astype(np.uint8)
    fb, gb = _seg2bmap(fg), _seg2bmap(gt)
    fg_dil, gt_dil = cv2.dilate(fb.astype(np.uint8), disk), cv2.dilate(gb.astype(np.uint8), disk)
    n_fg, n_gt = np.sum(fb), np.sum(gb)
    if n_fg == 0 and n_gt > 0:
        p, rc = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        p, rc = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        p, rc = 1.0, 1.0
    else:
        p, rc = np.sum(fb * gt_dil) / float(n_fg), np.sum(gb * fg_dil) / float(n_gt)
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def _stats(v: np.ndarray) -> tuple[float, float, float]:
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(int)
    bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
    return float(np.mean(v)), float(np.mean(v > 0.5)), float(np.mean(bins[0]) - np.mean(bins[3]))


def load_davis_arrays(gt_root: Path, res_root: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """All frames of every sequence as ``(name, gt (T, H, W), pred (T, H, W))`` uint8 arrays."""
    out = []
    for seq in (gt_root / "ImageSets" / "2017" / "val.txt").read_text().split():
        names = sorted(p.stem for p in (gt_root / "Annotations" / "480p" / seq).glob("*.png"))
        gts = np.stack([np.array(Image.open(gt_root / "Annotations" / "480p" / seq / f"{n}.png")) for n in names])
        preds = np.stack([np.array(Image.open(res_root / seq / f"{n}.png")) for n in names])
        out.append((seq, gts, preds))
    return out


def baseline_scores(videos: list[tuple[str, np.ndarray, np.ndarray]]) -> float:
    """Single process, frame by frame, object by object (the official algorithm in plain numpy)."""
    j_stats, f_stats = [], []
    for _, gts, preds in videos:
        for o in range(1, int(gts[0].max()) + 1):
            j, f = [], []
            for g, p in zip(gts[1:-1], preds[1:-1]):
                gm, pm = g == o, p == o
                union = np.sum(gm | pm)
                j.append(1.0 if union == 0 else np.sum(gm & pm) / union)
                f.append(_f_measure(pm, gm))
            j_stats.append(_stats(np.array(j)))
            f_stats.append(_stats(np.array(f)))
    return (np.mean([s[0] for s in j_stats]) + np.mean([s[0] for s in f_stats])) / 2


def baseline_davis(gt_root: Path, res_root: Path) -> float:
    """Read with PIL (as the official ``np.array(Image.open(...))``), then :func:`baseline_scores`."""
    return baseline_scores(load_davis_arrays(gt_root, res_root))


_ARRAYS: list[tuple[str, np.ndarray, np.ndarray]] = []


def _score_in_memory(i: int) -> tuple[str, object, object, object]:
    import torch

    from vidseg_common.metrics.jandf import score_video

    seq, gt, pred = _ARRAYS[i]
    return seq, *score_video(torch.from_numpy(gt), torch.from_numpy(pred), seq)


def ours_scores(videos: list[tuple[str, np.ndarray, np.ndarray]], workers: int) -> float:
    """Our scorer (the one behind ``vidseg eval davis``) on in-memory arrays, over the same process pool."""
    from vidseg_common.metrics.jandf import JandF
    from vidseg_common.tools.eval import parallel_map

    _ARRAYS[:] = videos  # forked workers see the arrays without pickling
    metric = JandF()
    for seq, objects, j, f in parallel_map(_score_in_memory, range(len(videos)), workers):
        metric.add_scores(seq, objects, j, f)
    return float(metric.compute()["J&F-Mean"])


# ----------------------------------------------------------------------------- YouTube-VIS set + baseline
def make_ytvis(root: Path, videos: int, frames: int, height: int, width: int) -> None:
    rng = np.random.default_rng(0)
    vids, anns, results = [], [], []
    for v in range(1, videos + 1):
        vids.append({"id": v, "width": width, "height": height, "length": frames,
                     "file_names": [f"v{v}/{t:05d}.jpg" for t in range(frames)]})  # fmt: skip
        for _ in range(rng.integers(1, 4)):
            cat = int(rng.integers(1, 41))
            cy, cx, ry, rx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width, rng.uniform(15, 80), rng.uniform(15, 100)
            vy, vx = rng.uniform(-2, 2), rng.uniform(-3, 3)
            start, stop = int(rng.integers(0, frames // 3)), int(rng.integers(2 * frames // 3, frames + 1))
            segs, dsegs = [], []
            for t in range(frames):
                m = ellipse(height, width, cy + vy * t, cx + vx * t, ry, rx) if start <= t < stop else None
                segs.append(None if m is None else mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))
                jit = rng.normal(0, 4, 4)
                dm = ellipse(height, width, cy + vy * t + jit[0], cx + vx * t + jit[1], ry + jit[2], rx + jit[3])
                dsegs.append(mask_utils.encode(np.asfortranarray(dm.astype(np.uint8))) if start <= t < stop else None)
            anns.append({"id": len(anns) + 1, "video_id": v, "category_id": cat, "iscrowd": 0,
                         "segmentations": [None if s is None else {"size": s["size"], "counts": s["counts"].decode()} for s in segs],
                         "areas": [None if s is None else float(mask_utils.area(s)) for s in segs]})  # fmt: skip
            results.append({"video_id": v, "category_id": cat if rng.random() > 0.2 else int(rng.integers(1, 41)),
                            "score": float(rng.random()),
                            "segmentations": [None if s is None else {"size": s["size"], "counts": s["counts"].decode()} for s in dsegs]})  # fmt: skip
        while sum(r["video_id"] == v for r in results[-12:]) < 10:  # false positives up to 10 per video
            m = ellipse(height, width, rng.uniform(0, height), rng.uniform(0, width), 30, 40)
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            seg = {"size": rle["size"], "counts": rle["counts"].decode()}
            results.append({"video_id": v, "category_id": int(rng.integers(1, 41)), "score": float(rng.random() * 0.5),
                            "segmentations": [seg] * frames})  # fmt: skip
    cats = [{"id": c, "name": f"c{c}", "supercategory": "x"} for c in range(1, 41)]
    (root / "gt.json").write_text(json.dumps({"videos": vids, "categories": cats, "annotations": anns}))
    (root / "results.json").write_text(json.dumps(results))


def baseline_ytvis(gt_path: Path, res_path: Path) -> float:
    """Decode every mask, numpy intersection/union per (detection, GT, frame), then the COCO accumulation."""
    from vidseg_common.metrics.vis import average_area
    from vidseg_common.metrics.vis_matching import evaluate_tables
    from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results

    videos, categories = load_ground_truth(gt_path)
    dets = load_results(res_path, videos, categories)
    tables = {"dets": {k: [] for k in ("video", "category", "rank", "score", "avg_area")},
              "gts": {k: [] for k in ("video", "category", "index", "avg_area", "crowd")},
              "ious": {k: [] for k in ("video", "category", "rank", "index", "iou")}}  # fmt: skip
    for vid, gt in videos.items():
        dt = dets[vid]
        for cat in sorted(set(gt.categories) | set(dt.categories)):
            g_ids = [j for j, c in enumerate(gt.categories) if c == cat]
            d_all = [i for i, c in enumerate(dt.categories) if c == cat]
            d_ids = [d_all[i] for i in np.argsort([-dt.scores[i] for i in d_all], kind="mergesort")[:100]]
            for rank, i in enumerate(d_ids):
                for k, val in zip(tables["dets"], (vid, cat, rank, dt.scores[i], average_area(dt.areas[i]))):
                    tables["dets"][k].append(val)
            for index, j in enumerate(g_ids):
                for k, val in zip(tables["gts"], (vid, cat, index, average_area(gt.areas[j]), gt.iscrowd[j])):
                    tables["gts"][k].append(val)
            for rank, i in enumerate(d_ids):
                for index, j in enumerate(g_ids):
                    inter = union = 0.0
                    for d, g in zip(dt.segmentations[i], gt.segmentations[j]):
                        dm = None if d is None else mask_utils.decode(d).astype(bool)
                        gm = None if g is None else mask_utils.decode(g).astype(bool)
                        if dm is not None and gm is not None:
                            inter += np.sum(dm & gm)
                            union += np.sum(dm | gm)
                        elif dm is not None or gm is not None:
                            union += np.sum(dm if dm is not None else gm)
                    for k, val in zip(tables["ious"], (vid, cat, rank, index, inter / union if union > 0 else 0.0)):
                        tables["ious"][k].append(val)
    arrays = {n: {k: np.asarray(v, np.float64) for k, v in t.items()} for n, t in tables.items()}
    order = {n: np.lexsort([arrays[n][k] for k in reversed(keys)]) for n, keys in
             (("dets", ("video", "category", "rank")), ("gts", ("video", "category", "index")),
              ("ious", ("video", "category", "rank", "index")))}  # fmt: skip
    arrays = {n: {k: v[order[n]] for k, v in t.items()} for n, t in arrays.items()}
    return float(evaluate_tables(arrays["dets"], arrays["gts"], arrays["ious"])[0])


def _time(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--vis-videos", type=int, default=302)
    parser.add_argument("--vis-frames", type=int, default=36)
    parser.add_argument("--workers", type=int, default=0, help="vidseg eval --workers (0 = all cores)")
    parser.add_argument("--skip-vis", action="store_true")
    parser.add_argument("--skip-davis", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sets (6 videos × 20 frames; 40 VIS videos)")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.frames, args.vis_videos = 6, 20, 40
    # Import everything both sides use before any timing (import time is not evaluation time).
    import vidseg_common.metrics.jandf
    import vidseg_common.metrics.vis
    import vidseg_common.tools.eval  # noqa: F401
    from vidseg_common.tools.main import main as vidseg

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_davis:
            gen, _ = _time(make_davis, root / "davis", args.videos, args.frames, args.height, args.width, args.objects, os.cpu_count())
            print(f"generated DAVIS-like set: {args.videos} videos × {args.frames} frames × {args.height}×{args.width}, "
                  f"{args.objects} objects ({gen:.1f} s)", file=sys.stderr)  # fmt: skip
            t_base, jf_base = _time(baseline_davis, root / "davis" / "gt", root / "davis" / "res")
            out = root / "davis.json"
            argv = ["eval", "davis", "--gt", str(root / "davis" / "gt"), "--results", str(root / "davis" / "res"),
                    "--json", str(out), "--quiet", "--workers", str(args.workers)]  # fmt: skip
            t_ours, rc = _time(vidseg, argv)
            jf_ours = json.loads(out.read_text())["global"]["J&F-Mean"] if rc == 0 else float("nan")
            rows.append(("davis", f"{args.videos}x{args.frames}x{args.height}x{args.width}", t_base, t_ours, jf_base, jf_ours))
            arrays = load_davis_arrays(root / "davis" / "gt", root / "davis" / "res")
            t_base, jf_base = _time(baseline_scores, arrays)
            t_ours, jf_ours = _time(ours_scores, arrays, args.workers)
            rows.append(("davis-score", "same, decoded", t_base, t_ours, jf_base, jf_ours))
        if not args.skip_vis:
            (root / "ytvis").mkdir()
            gen, _ = _time(make_ytvis, root / "ytvis", args.vis_videos, args.vis_frames, 360, 640)
            print(f"generated YouTube-VIS-like set: {args.vis_videos} videos × {args.vis_frames} frames ({gen:.1f} s)", file=sys.stderr)
            t_base, ap_base = _time(baseline_ytvis, root / "ytvis" / "gt.json", root / "ytvis" / "results.json")
            out = root / "vis.json"
            argv = ["eval", "youtube-vis", "--gt", str(root / "ytvis" / "gt.json"), "--results",
                    str(root / "ytvis" / "results.json"), "--json", str(out), "--quiet", "--workers", str(args.workers)]  # fmt: skip
            t_ours, rc = _time(vidseg, argv)
            ap_ours = json.loads(out.read_text())["stats"]["AP"] if rc == 0 else float("nan")
            rows.append(("youtube-vis", f"{args.vis_videos}x{args.vis_frames}x360x640", t_base, t_ours, ap_base, ap_ours))
    print(f"cores: {os.cpu_count()}, vidseg eval --workers {args.workers or os.cpu_count()}")
    print("davis-score = scoring only, frames already decoded in memory (PNG decoding excluded on both sides)")
    print(f"{'set':<12} {'size':<20} {'baseline s':>11} {'vidseg eval s':>14} {'speed-up':>9} {'metric (base / ours)':>30}")
    for name, size, tb, to, mb, mo in rows:
        print(f"{name:<12} {size:<20} {tb:>11.2f} {to:>14.2f} {tb / to:>8.1f}x {mb:>14.9f} / {mo:.9f}")
        if abs(mb - mo) > 1e-9:
            print(f"  WARNING: {name} numbers differ by {abs(mb - mo):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
