"""All op-family benchmarks in one run: time and peak memory of fast vs reference vs dense, as ratios.

Runs, in order, the deformable-attention (``ops_deform_attn``), sparse-attention (``ops_sparse_attn``)
and sparse-convolution (``ops_sparse_conv``) benchmarks, each printing its own table with the targets of
the ops issue next to the measured ratios. Each family script also runs on its own with more options.

    python benchmarks/ops.py            # paper sizes (minutes on 2 CPU cores)
    python benchmarks/ops.py --quick    # small sizes (a smoke run)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

FAMILIES = ("ops_deform_attn", "ops_sparse_attn", "ops_sparse_conv")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the family scripts start subprocess workers that re-import them
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes in every family")
    parser.add_argument("--only", choices=FAMILIES, action="append", help="run only these families")
    args = parser.parse_args(argv)
    status = 0
    for name in args.only or FAMILIES:
        print(f"\n===== {name} =====", flush=True)
        status |= int(_load(name).main(["--quick"] if args.quick else []) or 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
