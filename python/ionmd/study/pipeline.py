"""``ionmd study``: one material from a structure and a model to transport numbers.

:func:`run_study` is the library entry point; every stage is a function of its own
that uses the generic library (structures from :mod:`ionmd.driver.structure`, the
sweep from :mod:`ionmd.driver`, diffusion, hop classes and the report from
:mod:`ionmd.analysis`, barriers from :mod:`ionmd.neb`). The stages, in order:

Each stage is a module: ``structure`` :mod:`ionmd.study.cell_stage`, ``fit`` and
``md`` :mod:`ionmd.study.md_stage`, ``analysis`` :mod:`ionmd.study.analysis_stage`,
``neb`` :mod:`ionmd.study.neb_stage`, ``report`` :mod:`ionmd.study.report_stage`
(:mod:`ionmd.study.stages` re-exports their names).

``structure``
    The supercell of the given structure, with the requested point defect; writes
    ``structure/perfect.data`` (the reference lattice for the site analysis),
    ``structure/cell.data`` (the MD cell) and ``structure/cell.json`` (what was built,
    including the removed or added atom).
``fit``
    Only for a model with a ``fit`` table: training frames, labels, a MACE fit and its
    TorchScript export (``fit/LABEL/``, :mod:`ionmd.study.fit_stage`), resumable.
``md``
    The temperature x seed sweep (``sweep/``), resumable.
``analysis``
    D(T), σ, Arrhenius, hop classes and their rates (``sweep/report.json``).
``neb``
    NEB barriers of the hop classes seen in the MD (``neb/``).
``report``
    ``report.md``, ``report.html`` and ``study.json`` (every number with its units,
    interval and flags) in the output directory.

A rerun with ``resume=True`` skips finished MD runs and NEBs; the analysis and the
report are redone (they are cheap).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.jsonfile import read_json
from ionmd.settings_record import check_or_record
from ionmd.study.config import StudyConfig
from ionmd.study.progress import DemoProgress, format_hms

STAGES = ("structure", "fit", "md", "analysis", "neb", "report")
CONFIG_RECORD = "study_config.json"


@dataclass
class StudyOutcome:
    """Files written by :func:`run_study` and the flags raised on the way."""

    out: Path
    report_md: Path
    report_html: Path
    study_json: Path
    flags: list[dict[str, str]] = field(default_factory=list)
    wall_s: float = 0.0


def default_ranks() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_or_record_config(cfg: StudyConfig, out: Path, resume: bool) -> bool:
    """Record ``cfg`` in ``out``; return True when resuming a study of the same config.

    Raises
    ------
    InputError
        ``out`` holds a study and ``resume`` is False, or it holds another study's config.
    """
    path = out / CONFIG_RECORD
    if path.is_file() and not resume:
        old = read_json(path, "choose another --out")
        raise InputError(f"{out} already holds a study ('{old.get('name', '?')}'); "
                         "pass --resume to continue it, or choose another --out")
    return check_or_record(path, cfg.identity(), what=f"the study in {out}", hint="choose another --out")


def _sigterm_as_interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def run_study(cfg: StudyConfig, out: str | Path, n_ranks: int | None = None,
              resume: bool = False, progress: DemoProgress | None = None) -> StudyOutcome:
    """Run (or, with ``resume``, continue) the study ``cfg`` in ``out``.

    Parameters
    ----------
    cfg
        The validated study (:func:`ionmd.study.config.load_study_config`).
    out
        Output directory.
    n_ranks
        MPI ranks for the MD sweep and the NEBs (default: all cores).
    resume
        Continue a study already in ``out`` (finished MD runs and NEBs are kept).
    progress
        Progress display (default: lines on stderr).

    Raises
    ------
    InputError
        Bad settings, or ``out`` holds another study.
    IonmdError
        A stage failed (the message names it).
    KeyboardInterrupt
        Ctrl-C or SIGTERM; rerun with ``resume`` to continue.
    """
    from ionmd.study.analysis_stage import analyse
    from ionmd.study.cell_stage import build_cell
    from ionmd.study.md_stage import fit_models, run_md, stage_priors_s
    from ionmd.study.neb_stage import run_hop_nebs
    from ionmd.study.report_stage import write_study_report

    out = Path(out).resolve()
    n_ranks = n_ranks or default_ranks()
    if n_ranks < 1:
        raise InputError(f"--np must be at least 1, got {n_ranks}")
    if n_ranks % cfg.md.ranks_per_run:
        raise InputError(f"--np {n_ranks} is not a multiple of md.ranks_per_run "
                         f"{cfg.md.ranks_per_run} ({cfg.path})")
    resumed = check_or_record_config(cfg, out, resume)
    t0 = time.time()
    priors = stage_priors_s(cfg, n_ranks)
    progress = progress or DemoProgress(priors, label="study")
    progress.priors_s = dict(priors)
    progress.message(f"ionmd study '{cfg.name}' in {out}{' (resuming)' if resumed else ''}")
    old = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        progress.start("structure", "building the cell")
        cell = build_cell(cfg, out / "structure")
        progress.message(f"cell: {cell.summary()}")
        priors = stage_priors_s(cfg, n_ranks, cell.n_atoms)  # now with the cell's size
        progress.priors_s.update({k: v for k, v in priors.items() if k != "structure"})
        progress.message(f"expected about {format_hms(sum(priors.values()))} on an idle machine"
                         + ("" if all(m.eta_us_per_atom_step for m in cfg.models)
                            else " (a rough prior: the model's cost is not known in advance)"))
        progress.finish()
        progress.start("fit", "sampling, labelling, fitting and exporting the study's own model"
                       if any(m.fit is not None for m in cfg.models) else "nothing to fit")
        fit_models(cfg, out, progress)  # sets the path of each model with a fit table
        progress.finish()
        progress.start("md", "starting the sweep")
        sweep = run_md(cfg, out, cell, n_ranks, progress)
        progress.finish()
        progress.start("analysis", "diffusion, conductivity, hop classes")
        analysis = analyse(cfg, sweep, cell)
        progress.finish()
        progress.start("neb", "barriers of the hop classes seen in the MD")
        nebs = run_hop_nebs(cfg, out / "neb", cell, analysis, n_ranks, progress)
        progress.finish()
        progress.start("report", "writing report.md, report.html, study.json")
        outcome = write_study_report(cfg, out, cell, sweep, analysis, nebs)
        progress.finish()
    finally:
        signal.signal(signal.SIGTERM, old)
    outcome.wall_s = time.time() - t0
    progress.message(f"done in {format_hms(outcome.wall_s)}: {outcome.report_md}")
    return outcome


def flag_lines(flags: list[dict[str, Any]]) -> list[str]:
    """One readable line per flag: ``where: flag (detail)``."""
    return [f"{f.get('where', '?')}: {f.get('flag', '?')}"
            + (f" ({f['detail']})" if f.get("detail") else "") for f in flags]
