"""``python -m ionmd.driver``: the driver's sub-commands alone (structure, input, sweep).

Same commands and error handling as ``ionmd``; useful where the full CLI is not
installed, e.g. as the program of an MPI launch in tests.
"""

from __future__ import annotations

import argparse
import sys

from ionmd.driver.cli import register
from ionmd.errors import IonmdError


def main(argv: list[str] | None = None) -> int:
    """Run a driver sub-command; return the exit code."""
    parser = argparse.ArgumentParser(prog="ionmd")
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
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
