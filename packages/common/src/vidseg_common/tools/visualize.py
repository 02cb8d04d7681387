"""``vidseg visualize``: render predictions over their frames as a GIF (and/or MP4) plus a contact-sheet PNG.

Tasks::

    vidseg visualize vos --pred out/preds --images data/davis --out viz/        # DAVIS-layout palette PNGs
    vidseg visualize vis --results results.json --gt valid.json --images valid/JPEGImages --out viz/
    vidseg visualize vss --pred out/preds --images data/cityscapes/leftImg8bit/val --dataset cityscapes --out viz/

For each video it writes ``<out>/<video>.gif`` (``--no-gif`` to skip), ``<out>/<video>.mp4`` with ``--mp4``
(H.264, PyAV) and ``<out>/<video>_sheet.png`` (``--sheet-frames`` frames spread over the video, lossless:
the exact overlay colours). Every file is written atomically. The rendering lives in :mod:`vidseg_common.viz`.
Bad input (missing folder/frame, RGB mask, size mismatch, malformed JSON) exits with code 2 and one line
naming the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidseg_common.errors import ConfigError

HELP = "render VOS/VIS/VSS predictions over their frames to GIF/MP4 and a contact-sheet PNG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    vos = sub.add_parser("vos", help="DAVIS-layout palette PNGs <pred>/<video>/<frame>.png (object ids)")
    vos.add_argument("--pred", required=True, type=Path, help="folder of <video>/<frame>.png masks")
    vos.add_argument("--images", required=True, type=Path, help="DAVIS root or a folder of <video>/<frame>.jpg")
    vos.add_argument("--videos", nargs="+", help="videos to render (default: all in --pred)")
    vos.add_argument("--no-ids", action="store_true", help="do not write the object ids on the masks")
    vis = sub.add_parser("vis", help="YouTube-VIS results JSON (masks with ids, class names and scores)")
    vis.add_argument("--results", required=True, type=Path, help="results JSON (list of predictions)")
    vis.add_argument("--gt", required=True, type=Path, help="dataset JSON (videos, file_names, categories)")
    vis.add_argument("--images", required=True, type=Path, help="folder the dataset's file_names are relative to")
    vis.add_argument("--score-threshold", type=float, default=0.3, help="drop predictions below (default 0.3)")
    vis.add_argument("--max-instances", type=int, default=20, help="at most this many per video, best first")
    vis.add_argument("--videos", nargs="+", type=int, help="video ids to render (default: all)")
    vss = sub.add_parser("vss", help="label PNGs (class ids) in the Cityscapes / CamVid class colours")
    vss.add_argument("--pred", required=True, type=Path, help="folder of label PNGs (searched recursively)")
    vss.add_argument("--images", required=True, type=Path, help="folder holding the frames (searched recursively)")
    vss.add_argument("--dataset", choices=("cityscapes", "camvid"), default="cityscapes")
    vss.add_argument("--label-ids", action="store_true", help="PNGs hold Cityscapes labelIds, not trainIds")
    vss.add_argument("--pattern", default="*.png", help="label file pattern (e.g. '*_gtFine_labelTrainIds.png')")
    for task in (vos, vis, vss):
        task.add_argument("--out", required=True, type=Path, help="output folder")
        task.add_argument("--alpha", type=float, default=0.5, help="mask opacity (default 0.5)")
        task.add_argument("--fps", type=float, default=5.0, help="frames per second of GIF/MP4 (default 5)")
        task.add_argument("--no-gif", action="store_true", help="do not write the GIF")
        task.add_argument("--mp4", action="store_true", help="also write an H.264 MP4 (PyAV)")
        task.add_argument("--sheet-frames", type=int, default=8, help="frames in the contact sheet (default 8)")
        task.add_argument("--columns", type=int, default=4, help="contact-sheet columns (default 4)")
        task.add_argument("--max-videos", type=int, default=0, help="render at most this many videos (0 = all)")


def run(args: argparse.Namespace) -> int:
    from vidseg_common.io import atomic_path
    from vidseg_common.viz import contact_sheet, sample_indices, write_gif, write_mp4
    from vidseg_common.viz.sources import render_vis, render_vos, render_vss

    if not 0.0 <= args.alpha <= 1.0 or args.fps <= 0 or args.sheet_frames < 1 or args.columns < 1 or args.max_videos < 0:
        raise ConfigError("--alpha must be in [0, 1], --fps > 0, --sheet-frames ≥ 1, --columns ≥ 1, --max-videos ≥ 0")
    if args.task == "vos":
        videos = render_vos(args.pred, args.images, args.videos, alpha=args.alpha, label_ids=not args.no_ids)
    elif args.task == "vis":
        videos = render_vis(args.results, args.gt, args.images, score_threshold=args.score_threshold,
                            videos=args.videos, alpha=args.alpha, max_instances=args.max_instances)
    else:
        videos = render_vss(args.pred, args.images, dataset=args.dataset, alpha=args.alpha, label_ids=args.label_ids,
                            pattern=args.pattern)
    count = 0
    for name, frames in videos:
        written = []
        if not args.no_gif:
            write_gif(args.out / f"{name}.gif", frames, fps=args.fps)
            written.append(f"{name}.gif")
        if args.mp4:
            write_mp4(args.out / f"{name}.mp4", frames, fps=args.fps)
            written.append(f"{name}.mp4")
        sheet = contact_sheet([frames[i] for i in sample_indices(len(frames), args.sheet_frames)], columns=args.columns)
        from PIL import Image

        with atomic_path(args.out / f"{name}_sheet.png") as tmp:
            Image.fromarray(sheet).save(tmp, format="PNG")
        written.append(f"{name}_sheet.png")
        print(f"{name}: {len(frames)} frames → {', '.join(written)}", flush=True)
        count += 1
        if args.max_videos and count >= args.max_videos:
            break
    print(f"wrote {count} video(s) to {args.out}")
    return 0
