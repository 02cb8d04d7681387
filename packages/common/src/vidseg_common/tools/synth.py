"""``vidseg synth``: write a seeded synthetic dataset in a real layout (DAVIS, YouTube-VOS/VIS, Cityscapes, CamVid).

Example::

    vidseg synth out/davis --layout davis --num-videos 30 --num-val-videos 0 --num-frames 70 \\
        --height 480 --width 854 --full-occlusion --camera-speed 2
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time

HELP = "generate a synthetic video dataset in a real on-disk layout (DAVIS, YouTube-VOS/VIS, Cityscapes, CamVid)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vidseg_common.data.synthetic.config import LAYOUTS, SyntheticConfig

    docs = _attribute_docs(SyntheticConfig.__doc__ or "")
    parser.add_argument("root", help="output folder")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: min(2, CPUs))")
    for field in dataclasses.fields(SyntheticConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default,
                                help=docs.get(field.name))
        else:
            kind = {"int": int, "float": float, "str": str}[str(field.type)]
            extra = {"choices": LAYOUTS} if field.name == "layout" else {}
            parser.add_argument(flag, type=kind, default=field.default,
                                help=f"{docs.get(field.name, '')} (default: {field.default})", **extra)


def _attribute_docs(doc: str) -> dict[str, str]:
    """``{name: text}`` from the ``Attributes:`` section of a Google-style docstring."""
    out: dict[str, str] = {}
    name = None
    for line in doc.split("Attributes:", 1)[-1].splitlines():
        match = re.match(r"^\s{8}(\w+): (.*)$", line)
        if match:
            name, out[match[1]] = match[1], match[2]
        elif name and line.strip():
            out[name] += " " + line.strip()
    return {k: v.replace("%", "%%") for k, v in out.items()}


def run(args: argparse.Namespace) -> int:
    from vidseg_common.data.synthetic.config import SyntheticConfig
    from vidseg_common.data.synthetic.generator import generate_dataset

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)}
    cfg = SyntheticConfig(**options)
    start = time.perf_counter()
    generate_dataset(args.root, cfg, workers=args.workers)
    print(f"wrote {cfg.layout} dataset ({cfg.num_videos} train + {cfg.num_val_videos} val videos) to {args.root} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0
