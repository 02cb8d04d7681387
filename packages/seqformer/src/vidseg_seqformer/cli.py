"""Command line: ``vidseg-seqformer {fit,validate,test,predict,benchmark}``."""

from __future__ import annotations

from vidseg_common.engine.cli import run_cli
from vidseg_seqformer.module import SeqFormerModule


def main(args: list[str] | None = None) -> None:
    """``vidseg-seqformer {fit,validate,test,predict,benchmark}``."""
    run_cli(SeqFormerModule, paper="seqformer", args=args)
