"""``ionmd study STUDY.toml [--out DIR] [--np N] [--resume]``: the thin command-line shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd study``."""
    p = subparsers.add_parser(
        "study", help="one material from a structure and a model to D(T), σ, Ea, hops and barriers",
        description="Run the study defined in STUDY.toml: build the cell with its defect, run "
                    "the MD sweep over MPI, analyse diffusion, conductivity and hop classes, "
                    "compute NEB barriers of the hop classes seen in the MD, and write "
                    "report.md, report.html and study.json (every number with units, interval "
                    "and flags) into --out. Schema: docs/study.md.")
    p.add_argument("config", help="the study definition (TOML)")
    p.add_argument("--out", default=None, help="output directory (default: ./<study name>)")
    p.add_argument("--np", type=int, default=None,
                   help="MPI ranks for the MD sweep and the NEBs (default: all cores)")
    p.add_argument("--resume", action="store_true",
                   help="continue a study in --out: finished MD runs and NEBs are kept")
    p.set_defaults(func=_cmd_study)


def _cmd_study(args: argparse.Namespace) -> int:
    from ionmd.study.config import load_study_config
    from ionmd.study.pipeline import flag_lines, run_study

    cfg = load_study_config(args.config)
    out = Path(args.out) if args.out else Path.cwd() / cfg.name
    try:
        outcome = run_study(cfg, out, n_ranks=args.np, resume=args.resume)
    except KeyboardInterrupt:
        print(f"ionmd study: interrupted; rerun with --resume --out {out} to continue",
              file=sys.stderr)
        return 130
    print(f"report: {outcome.report_md}\nreport: {outcome.report_html}\nresults: {outcome.study_json}")
    if outcome.flags:
        print(f"{len(outcome.flags)} flag(s): these numbers are not to be quoted:")
        for line in flag_lines(outcome.flags):
            print(f"  {line}")
    return 0
