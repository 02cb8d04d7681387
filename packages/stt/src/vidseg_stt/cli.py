"""``vidseg-stt {fit,validate,test,predict,benchmark}``."""

from __future__ import annotations

from vidseg_common.engine.cli import run_cli
from vidseg_stt.module import STTModule


def main(args: list[str] | None = None) -> None:
    """``vidseg-stt {fit,validate,test,predict,benchmark}``."""
    run_cli(STTModule, paper="stt", args=args)
