"""Command-line entry point ``ionmd learn CONFIG.toml [--resume] [--random-baseline]``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd learn`` to the ``ionmd`` parser."""
    p = subparsers.add_parser(
        "learn", help="active learning: committee exploration, label where unsure, refit",
        description="Run (or resume) active learning as defined in CONFIG.toml: train a "
                    "committee, explore with it in LAMMPS (pair_style mlip/torch with "
                    "deviation output), label the frames where it disagrees, refit. "
                    "See docs/learn.md.")
    p.add_argument("config", metavar="CONFIG.toml")
    p.add_argument("--resume", action="store_true",
                   help="continue a run whose learn_state.json exists (finished steps are kept)")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.add_argument("--random-baseline", action="store_true",
                   help="after learning, label the same number of randomly chosen explored "
                        "frames, refit both sets from scratch and compare held-out errors")
    p.set_defaults(func=run_learn_command)


def run_learn_command(args: argparse.Namespace) -> int:
    """Run ``ionmd learn``."""
    from ionmd.learn.config import load_learn_config

    config = load_learn_config(args.config)
    if args.check:
        print(f"{config.path}: valid; work_dir {config.work_dir}")
        return 0
    from ionmd.learn.loop import run_learning
    from ionmd.learn.report import write_learn_report

    state = run_learning(config, resume=args.resume)
    if args.random_baseline:
        from ionmd.learn.baseline import run_random_baseline

        result = run_random_baseline(config)
        print(result["verdict"])
    md, png = write_learn_report(config.work_dir)
    print(f"wrote {md} and {png}")
    return 0 if state.status in ("converged", "max_iterations", "no_candidates") else 1
