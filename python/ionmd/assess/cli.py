"""``ionmd assess``: the command-line shell over :func:`ionmd.assess.report.run_assess`."""

from __future__ import annotations

import argparse
from pathlib import Path

PARTS = ("learning", "locality", "transport")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd assess``."""
    p = subparsers.add_parser(
        "assess", help="learning curves, locality scans, transport check and cost of candidate models",
        description="Fit the candidate MACE recipes of ASSESS.toml on growing training sets (fixed "
                    "held-out split, several seeds) and over cutoffs and layers; run a short MD sweep "
                    "of each candidate beside the reference model; write tables (CSV), plots (PNG), "
                    "assess.json and verdict.md (the cheapest candidate whose D(T), jump rates and Ea "
                    "agree with the reference within their 95%% intervals). Schema: docs/assess.md.")
    p.add_argument("config", help="the assessment definition (TOML)")
    p.add_argument("--out", default=None, help="output directory (default: ./assess_<config stem>)")
    p.add_argument("--only", action="append", choices=PARTS, default=None,
                   help="run only this part (repeatable; default: all parts the config defines)")
    p.set_defaults(func=_cmd_assess)


def _cmd_assess(args: argparse.Namespace) -> int:
    from ionmd.assess.config import load_assess_config
    from ionmd.assess.report import run_assess

    cfg = load_assess_config(args.config)
    out = Path(args.out) if args.out else Path.cwd() / f"assess_{Path(args.config).stem}"
    res = run_assess(cfg, out, tuple(args.only or PARTS))
    v = res.verdict
    print(f"ionmd assess: wrote {len(res.files)} files to {out} in {res.wall_s:.0f} s")
    if v is not None:
        print(f"verdict: {v.choice or 'none'}: {v.reason}")
        if v.flags:
            print("flags: " + ", ".join(v.flags))
    return 0
