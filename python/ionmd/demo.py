"""``ionmd demo [--out DIR] [--full] [--np N]``: the bundled LiF study, a thin shell over ``ionmd study``.

The demo is a study definition like any other: ``inputs/studies/lif_interstitial.toml``
(quick, the default) or ``inputs/studies/lif_interstitial_full.toml`` (``--full``), run
by :func:`ionmd.study.pipeline.run_study`. A rerun with the same ``--out`` resumes; a
directory of another study (or of the other mode) is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ionmd.errors import InputError

STUDIES_DIR = Path(__file__).resolve().parents[2] / "inputs" / "studies"
DEMO_STUDIES: dict[str, str] = {"quick": "lif_interstitial.toml",
                                "full": "lif_interstitial_full.toml",
                                "tiny": "lif_interstitial_tiny.toml"}
"""Mode -> the bundled study file (``tiny``: a plumbing check for the tests)."""


def demo_study_file(mode: str) -> Path:
    """The bundled study definition of ``mode`` (``quick``, ``full`` or ``tiny``).

    Raises
    ------
    InputError
        Unknown mode, or the file is missing from this checkout.
    """
    if mode not in DEMO_STUDIES:
        raise InputError(f"unknown demo mode {mode!r}; expected one of {', '.join(DEMO_STUDIES)}")
    path = STUDIES_DIR / DEMO_STUDIES[mode]
    if not path.is_file():
        raise InputError(f"the demo's study file is missing: {path}")
    return path


def run_demo(mode: str, out: str | Path, n_ranks: int | None = None):
    """Run (or resume) the bundled demo study of ``mode`` in ``out``.

    Returns
    -------
    ionmd.study.pipeline.StudyOutcome
        The report files and the flags raised.

    Raises
    ------
    InputError
        Bad ``n_ranks``, or ``out`` holds another study (or the other mode).
    KeyboardInterrupt
        Ctrl-C or SIGTERM; rerun the same command to resume.
    """
    from ionmd.study.config import load_study_config
    from ionmd.study.pipeline import run_study
    from ionmd.study.progress import DemoProgress
    from ionmd.study.stages import stage_priors_s

    cfg = load_study_config(demo_study_file(mode))
    n = n_ranks
    if n is None:
        from ionmd.study.pipeline import default_ranks

        n = default_ranks()
    progress = DemoProgress(stage_priors_s(cfg, max(n, 1)), label="demo")
    return run_study(cfg, out, n_ranks=n_ranks, resume=True, progress=progress)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd demo``."""
    p = subparsers.add_parser(
        "demo", help="the bundled LiF Li-interstitial study end to end: MD sweep, NEB, report",
        description="Run the bundled study inputs/studies/lif_interstitial.toml (or, with "
                    "--full, lif_interstitial_full.toml) through `ionmd study`: the bundled "
                    "MACE and DeePMD LiF models in LAMMPS at several temperatures and seeds "
                    "over MPI, NEB barriers of the hops seen beside the CHGNet reference, "
                    "diffusion and mechanisms; report.md, report.html and study.json go into "
                    "--out. Rerunning with the same --out resumes. The quick mode takes about "
                    "9 minutes on 2 idle cores (65-atom cell); --full about 1.3 hours "
                    "(217 atoms). See docs/demo.md.")
    p.add_argument("--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--full", action="store_true",
                   help="accurate mode: 217-atom cell, longer runs, more seeds (about 1.3 h)")
    p.add_argument("--np", type=int, default=None,
                   help="MPI ranks for the MD sweep and the NEBs (default: all cores)")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests only
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    import json

    from ionmd.study.pipeline import flag_lines
    from ionmd.study.stages import summary_table

    if args.full and args.tiny:
        raise InputError("--full and --tiny exclude each other")
    mode = "full" if args.full else "tiny" if args.tiny else "quick"
    try:
        outcome = run_demo(mode, Path(args.out), n_ranks=args.np)
    except KeyboardInterrupt:
        print(f"ionmd demo: interrupted; rerun the same command (--out {args.out}) to resume",
              file=sys.stderr)
        return 130
    summary = json.loads(outcome.study_json.read_text())["summary"]
    print("\n".join(summary_table(summary)[2:]))
    print(f"report: {outcome.report_md}\nreport: {outcome.report_html}\nresults: {outcome.study_json}")
    if outcome.flags:
        print(f"{len(outcome.flags)} flag(s) in study.json and the report: numbers not to be quoted")
        for line in flag_lines(outcome.flags)[:10]:
            print(f"  {line}")
    return 0
