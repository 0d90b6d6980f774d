"""``ionmd demo [--out DIR] [--full] [--np N]``: the thin command-line shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ionmd.study.plan import plan_for


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd demo``."""
    p = subparsers.add_parser(
        "demo", help="the LiF Li-interstitial study end to end: MD sweep, NEB, report",
        description="Run the bundled MACE and DeePMD LiF models in LAMMPS at several "
                    "temperatures and seeds over MPI, compute NEB barriers, analyse diffusion "
                    "and mechanisms, and write report.md and report.html into --out. "
                    "Rerunning with the same --out resumes. The default (quick) mode takes "
                    "about 9 minutes on 2 cores and uses a 65-atom cell; --full is the "
                    "accurate mode (217 atoms, about 1.3 hours). See docs/demo.md.")
    p.add_argument("--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--full", action="store_true",
                   help="accurate mode: 217-atom cell, longer runs, more seeds (about 1.3 h)")
    p.add_argument("--np", type=int, default=None,
                   help="MPI ranks for the MD sweep, one run per rank (default: all cores)")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests only
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ionmd.errors import InputError
    from ionmd.study.run import run_demo

    if args.full and args.tiny:
        raise InputError("--full and --tiny exclude each other")
    plan = plan_for("full" if args.full else "tiny" if args.tiny else "quick")
    try:
        report = run_demo(plan, Path(args.out), n_ranks=args.np)
    except KeyboardInterrupt:
        print(f"ionmd demo: interrupted; rerun the same command (--out {args.out}) to resume",
              file=sys.stderr)
        return 130
    print(report.table_text())
    print(f"\nreport: {report.markdown}\nreport: {report.html}")
    return 0
