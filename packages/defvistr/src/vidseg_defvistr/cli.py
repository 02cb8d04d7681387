"""``vidseg-defvistr {fit,validate,test,predict,benchmark}``."""

from __future__ import annotations

from vidseg_common.engine.cli import run_cli
from vidseg_defvistr.module import DefVisTRModule


def main(args: list[str] | None = None) -> None:
    """``vidseg-defvistr {fit,validate,test,predict,benchmark}``."""
    run_cli(DefVisTRModule, paper="defvistr", args=args)
