"""``vidseg-sstvos {fit,validate,test,predict,benchmark}``."""

from __future__ import annotations

from vidseg_common.engine.cli import run_cli
from vidseg_sstvos.module import SSTVOSModule


def main(args: list[str] | None = None) -> None:
    """``vidseg-sstvos {fit,validate,test,predict,benchmark}``."""
    run_cli(SSTVOSModule, paper="sstvos", args=args)
