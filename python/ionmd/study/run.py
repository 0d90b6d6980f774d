"""``ionmd demo`` end to end: structure and MD sweep, NEBs, analysis, report.

:func:`run_demo` is the library entry point; the CLI (:mod:`ionmd.demo`) only
parses arguments. A rerun with the same ``out`` resumes: the sweep skips finished
runs (``--resume``), finished NEBs are read back from their ``neb.json``, and the
analysis and report are redone (they are cheap).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from ionmd.errors import InputError
from ionmd.study.analysis import analyse_demo
from ionmd.study.md import run_md_sweep
from ionmd.study.neb import chgnet_reference, run_nebs
from ionmd.study.pipeline import _sigterm_as_interrupt, default_ranks
from ionmd.study.plan import DemoPlan, check_or_record_plan
from ionmd.study.progress import DemoProgress, format_hms
from ionmd.study.report import DemoReport, RunContext, write_report

STAGES = ("md", "neb", "analysis")


def record_invocation(out: Path, ctx: RunContext, t0: float, md_done_before: int) -> list[dict]:
    """Append this invocation to ``out/logs/invocations.jsonl``; return all of them."""
    path = out / "logs" / "invocations.jsonl"
    path.parent.mkdir(exist_ok=True)
    entry = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0)),
             "wall_s": round(ctx.wall_s, 1), "md_done_before": md_done_before,
             "n_ranks": ctx.n_ranks, "load_start": ctx.load_start[0], "load_end": ctx.load_end[0]}
    with open(path, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_demo(plan: DemoPlan, out: str | Path, n_ranks: int | None = None,
             progress: DemoProgress | None = None) -> DemoReport:
    """Run (or resume) the demo of ``plan`` in ``out``; return the report's files and table.

    Raises
    ------
    InputError
        Bad ``n_ranks``, or ``out`` holds a demo of another plan.
    IonmdError
        The MD sweep could not finish a single run.
    KeyboardInterrupt
        Ctrl-C or SIGTERM: running MD runs are marked interrupted; rerun to resume.
    """
    out = Path(out).resolve()
    n_ranks = n_ranks or default_ranks()
    if n_ranks < 1:
        raise InputError(f"--np must be at least 1, got {n_ranks}")
    resumed = check_or_record_plan(plan, out)
    t0 = time.time()
    load_start = os.getloadavg()
    progress = progress or DemoProgress(plan.predicted_s(n_ranks))
    progress.message(f"ionmd demo ({plan.mode} mode) in {out}"
                     f"{' (resuming)' if resumed else ''}; expected about "
                     f"{format_hms(sum(progress.priors_s.values()))} on an idle machine")
    old = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        walls: dict[str, float] = {}
        progress.start("md", "building the cell and starting the sweep")
        sweep = run_md_sweep(plan, out, n_ranks, progress)
        walls["md"] = progress.finish(1.0 - sweep.skipped_done / max(sweep.n_runs, 1))

        progress.start("neb", "knock-off and direct hops")
        nebs = run_nebs(plan, out, progress)
        walls["neb"] = progress.finish(sum(1 for o in nebs if not o.reused) / max(len(nebs), 1))

        progress.start("analysis", "diffusion, Arrhenius, mechanisms, cost, report")
        ana = analyse_demo(sweep.sweep_dir)
        reference = chgnet_reference()
        walls["analysis"] = time.time() - progress.stage_t0
        ctx = RunContext(
            n_ranks=n_ranks, wall_s=time.time() - t0, stage_wall_s=walls,
            load_start=load_start, load_end=os.getloadavg(), md_done=sweep.done,
            md_runs=sweep.n_runs, md_failures=sweep.failures, resumed=resumed,
            date_utc=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        ctx.history = record_invocation(out, ctx, t0, sweep.skipped_done)
        report = write_report(plan, out, ana, nebs, reference, ctx)
        progress.finish()
    finally:
        signal.signal(signal.SIGTERM, old)
    progress.message(f"done in {format_hms(time.time() - t0)}: {report.markdown} and {report.html}")
    return report
