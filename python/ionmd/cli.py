"""Command-line interface: a thin shell over the library.

Every sub-command lives in the module that implements it. Each such module
exposes ``register(subparsers)``, which adds its parser(s) and sets
``func=callable(args) -> int`` as the parser default. This file only collects
them, parses arguments and reports errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from ionmd import __version__
from ionmd.errors import IonmdError

# Modules that contribute sub-commands, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "ionmd.doctor",
    "ionmd.demo",
    "ionmd.study.cli",
    "ionmd.driver.cli",
    "ionmd.models.cli",
    "ionmd.analysis.cli",
    "ionmd.neb.cli",
    "ionmd.learn.cli",
    "ionmd.order.cli",
    "ionmd.assess.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="ionmd",
        description="ionmd: MLIP molecular dynamics in LAMMPS and ionic-transport analysis.",
    )
    parser.add_argument("--version", action="version", version=f"ionmd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings for users: the message only, without the Python source location."""
    return f"ionmd: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ionmd`` command line; return the process exit code."""
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except IonmdError as exc:
        print(f"ionmd {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
