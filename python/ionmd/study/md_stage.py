"""The ``fit`` and ``md`` stages of ``ionmd study``: the study's own models, the sweep, and the time estimate.

:func:`fit_models` fits every model with a ``fit`` table (:mod:`ionmd.study.fit_stage`);
:func:`sweep_toml` writes the study's ``ionmd sweep`` definition and :func:`run_md`
runs or resumes it; :func:`stage_priors_s` is the expected wall time of each stage.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ionmd.study.cell_stage import CellInfo, fit_structure
from ionmd.study.config import StudyConfig
from ionmd.study.progress import DemoProgress
from ionmd.tomlconfig import dumps

#: Rough ETA priors (s): the model's cost is unknown before the first run.
PRIOR_US_PER_ATOM_STEP_TORCH = 200.0
PRIOR_US_PER_ATOM_STEP_CLASSICAL = 5.0
PRIOR_RUN_OVERHEAD_S = 6.0
PRIOR_NEB_S = 60.0
PRIOR_FIT_S = 1800.0  # sample + label + fit + export of one model (ionmd.study.fit_stage)


def model_cost_prior(model) -> float:
    """Expected cost (core-µs per atom and step) of a study model, for the ETA."""
    if model.eta_us_per_atom_step is not None:
        return model.eta_us_per_atom_step
    return PRIOR_US_PER_ATOM_STEP_CLASSICAL if model.classical else PRIOR_US_PER_ATOM_STEP_TORCH


def stage_priors_s(cfg: StudyConfig, n_ranks: int, n_atoms: int | None = None) -> dict[str, float]:
    """Expected wall time (s) of each stage, for the progress display.

    Uses each model's ``eta_us_per_atom_step`` (else a rough prior by kind), the MD
    cell's ``n_atoms`` when known (else 100), ``n_ranks // ranks_per_run`` runs at a
    time, and ``[neb] eta_s`` per band (else 60 s).
    """
    steps = cfg.md.n_equil + cfg.md.n_prod
    cost = sum(model_cost_prior(m) for m in cfg.models)
    n_runs = len(cfg.md.temperatures_K) * len(cfg.md.seeds)
    groups = max(1, n_ranks // cfg.md.ranks_per_run)
    atoms = float(n_atoms) if n_atoms else 100.0
    md = n_runs * (len(cfg.models) * PRIOR_RUN_OVERHEAD_S
                   + 1e-6 * cost * atoms * steps / cfg.md.ranks_per_run) / groups
    per_band = cfg.neb.eta_s if cfg.neb.eta_s is not None else PRIOR_NEB_S
    neb = per_band * cfg.neb.max_hop_classes * len(cfg.models) if cfg.neb.enabled else 0.0
    fit = PRIOR_FIT_S * sum(m.fit is not None for m in cfg.models)
    return {"structure": 2.0, "fit": fit, "md": md, "analysis": 10.0, "neb": neb, "report": 2.0}


def fit_models(cfg: StudyConfig, out: Path, progress: DemoProgress) -> None:
    """Fit every model with a ``fit`` table (``out/fit/LABEL``, resumable) and set its ``path``."""
    from ionmd.study.fit_stage import fit_study_model

    for m in cfg.models:
        if m.fit is not None:
            m.path = fit_study_model(m.fit, fit_structure(cfg), out / "fit" / m.label, progress)


def fit_records(cfg: StudyConfig, out: Path) -> dict[str, dict[str, Any]]:
    """The fit summary (``out/fit/LABEL/fit.json``) of each fitted model."""
    from ionmd.study.fit_stage import read_study_fit

    found = {m.label: read_study_fit(out / "fit" / m.label) for m in cfg.models if m.fit is not None}
    return {label: asdict(f) for label, f in found.items() if f is not None}


def sweep_toml(cfg: StudyConfig, cell: CellInfo, sweep_dir: Path) -> str:
    """The ``ionmd sweep`` definition of the study (absolute paths)."""
    md = cfg.md
    models = {m.label: {"pair_style": m.pair_style or "", "pair_coeff": list(m.pair_coeff)} if m.classical
              else str(m.path) for m in cfg.models}
    return dumps({
        "name": cfg.name, "sweep_dir": str(sweep_dir), "temperatures_K": list(md.temperatures_K),
        "seeds": list(md.seeds), "structure": str(cell.cell_data), "models": models,
        "md": {"dt_fs": md.dt_fs, "n_equil": md.n_equil, "n_prod": md.n_prod, "thermostat": md.thermostat,
               "ensemble": "nvt", "dump_every": md.dump_every, "species": list(cfg.mobile),
               "restart_every": md.restart_every, "thermo_every": md.thermo_every},
    }, comment=f"Written by `ionmd study {cfg.path.name}`; run by\n"
               "  mpirun -np N ionmd sweep sweep.toml --resume --ranks-per-run R")


def run_md(cfg: StudyConfig, out: Path, cell: CellInfo, n_ranks: int, progress: DemoProgress):
    """Write ``out/sweep.toml`` and run (or resume) it; return the sweep outcome.

    Runs that failed in an earlier invocation (a lost node, a killed process) are run
    again: resuming a study means finishing it.
    """
    from ionmd.study.md import launch_sweep

    toml = out / "sweep.toml"
    toml.write_text(sweep_toml(cfg, cell, out / "sweep"))
    return launch_sweep(toml, out / "logs", n_ranks, cfg.md.ranks_per_run, progress,
                        cfg.md.n_equil + cfg.md.n_prod, retry_failed=True)
