"""The ``vidseg`` command: a thin argparse dispatcher over subcommand modules.

A subcommand is a module that defines three names::

    HELP: str                                            # one line for `vidseg --help`
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...          # the exit code

Built-in subcommands live in ``vidseg_common.tools.<name>`` and are listed in :data:`BUILTIN`; other
installed distributions can add theirs through the ``vidseg.commands`` entry-point group
(``name = "package.module"``). Subcommand modules are imported only when the command line needs
them, so ``vidseg --help`` stays fast and a broken optional subcommand cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

from vidseg_common.errors import VidSegError

BUILTIN: tuple[str, ...] = ("info", "synth", "eval", "compare", "visualize", "weights")
ENTRY_POINT_GROUP = "vidseg.commands"


def available_commands() -> dict[str, str]:
    """Map each available subcommand name to its module path (built-ins first, then plug-ins)."""
    commands = {
        name: f"vidseg_common.tools.{name}"
        for name in BUILTIN
        if importlib.util.find_spec(f"vidseg_common.tools.{name}") is not None
    }
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        commands.setdefault(entry.name, entry.value)
    return commands


def _load(module_path: str) -> ModuleType:
    module = importlib.import_module(module_path)
    for attr in ("HELP", "add_arguments", "run"):
        if not hasattr(module, attr):
            raise TypeError(f"vidseg subcommand module {module_path} does not define {attr}")
    return module


def build_parser(commands: dict[str, str], selected: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only the ``selected`` subcommand's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(prog="vidseg", description="vidseg tools: data generation, evaluation, comparison.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_path in commands.items():
        if name == selected:
            module = _load(module_path)
            sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=_short_help(module_path), add_help=False)
    return parser


def _short_help(module_path: str) -> str:
    try:
        return _load(module_path).HELP
    except Exception as err:  # a broken plug-in must not break `vidseg --help`
        return f"(unavailable: {err})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vidseg`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = available_commands()
    selected = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(commands, selected if selected in commands else None)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except VidSegError as err:
        print(f"vidseg {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
