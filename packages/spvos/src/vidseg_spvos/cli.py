"""``vidseg-spvos {fit,validate,test,predict,benchmark}``."""

from __future__ import annotations

from vidseg_common.engine.cli import run_cli
from vidseg_spvos.module import SpVOSModule


def main(args: list[str] | None = None) -> None:
    """``vidseg-spvos {fit,validate,test,predict,benchmark}``."""
    run_cli(SpVOSModule, paper="spvos", args=args)
