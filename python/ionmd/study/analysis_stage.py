"""The ``analysis`` stage of ``ionmd study``: D(T), σ, Arrhenius fits and hop classes of the sweep.

The numbers come from :func:`ionmd.analysis.report.write_report`; this module chooses
the sites from the study's ``[sites]`` table (:func:`site_options`) and flags what a
study's defect makes unreliable (:func:`flag_transient_interstitials`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionmd.study.cell_stage import CellInfo
from ionmd.study.config import StudyConfig


@dataclass
class StudyAnalysis:
    """The analysis report of the sweep and the hop classes for the NEB stage."""

    report_md: Path
    report_html: Path
    report: dict[str, Any]
    hop_classes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def unit_to_cell_frac(cfg: StudyConfig, cell: CellInfo, unit_frac: list[list[float]]):
    """Fractional positions of the unit cell, repeated over the supercell, as fractions of
    the cell's data files (``cell.perfect_data``; the LAMMPS-oriented, tilt-reduced cell).

    Returns an (n x repeats, 3) array in [0, 1).
    """
    import itertools

    import numpy as np
    from ase import Atoms

    from ionmd.driver.structure import build_with_records
    from ionmd.lammpsio.datafile import lammps_positions

    source = cfg.structure.file if cfg.structure.file is not None else cfg.structure.builtin
    built = build_with_records(source, cfg.structure.supercell or 1, min_length_A=cfg.structure.min_length_A)
    reps = np.asarray(built.reps, dtype=float)
    shifts = np.array(list(itertools.product(*(range(int(r)) for r in built.reps))), dtype=float)
    frac = np.vstack([(np.asarray(p, dtype=float) + shifts) / reps for p in unit_frac])
    dummy = Atoms(["H"] * len(frac), scaled_positions=frac % 1.0, cell=built.perfect.cell, pbc=True)
    new_cell, cart = lammps_positions(dummy)
    return np.linalg.solve(new_cell.T, cart.T).T % 1.0


def site_options(cfg: StudyConfig, cell: CellInfo):
    """The :class:`ionmd.analysis.mechanism.SiteOptions` of the study's ``[sites]`` table.

    ``interstitials = "none"`` gives no interstitial site (an ion off every lattice site
    is in transit), ``"auto"`` the analysis's automatic voids, a list its positions
    (unit cell) repeated over the supercell.
    """
    import numpy as np

    from ionmd.analysis.mechanism import SiteOptions

    s = cfg.sites
    if s.interstitials == "none":
        inter = np.zeros((0, 3))
    elif s.interstitials == "auto":
        inter = None
    else:
        inter = unit_to_cell_frac(cfg, cell, list(s.interstitials))
    given = {k: getattr(s, k) for k in ("min_residence_ps", "window_ps", "symprec_A")
             if getattr(s, k) is not None}
    return SiteOptions(interstitial_frac=inter, enter_radius_A=s.assign_radius_A,
                       leave_radius_A=s.leave_radius_A, perfect=site_lattice_data(cfg, cell), **given)


def site_lattice_data(cfg: StudyConfig, cell: CellInfo) -> str | None:
    """The ``[sites] lattice`` file as a LAMMPS data file beside the cell's (same supercell,
    same orientation and type order), or None when the study gives none."""
    if cfg.sites.lattice is None:
        return None
    from ionmd.driver.structure import make_structure

    out = Path(cell.perfect_data).parent / "site_lattice.data"
    make_structure(out, source=cfg.sites.lattice, types=list(cell.types),
                   supercell=cfg.structure.supercell or 1, min_length_A=cfg.structure.min_length_A)
    return str(out)


FRENKEL_TRANSIENT = "frenkel-transient"
"""Flag of an interstitial jump-rate fit in a vacancy study whose interstitials come and go."""


def interstitials_sustained(by_T: dict[str, dict[str, Any]]) -> bool:
    """Whether the interstitial population held through every run: at each temperature an
    ion sits on an interstitial site (median over the frames) and no Frenkel pair formed
    or recombined."""
    return bool(by_T) and all(
        int(r.get("n_interstitial_ions") or 0) > 0
        and not int((r.get("counts") or {}).get("frenkel_formation", 0))
        and not int((r.get("counts") or {}).get("recombination", 0)) for r in by_T.values())


def flag_transient_interstitials(cfg: StudyConfig, report: dict[str, Any]) -> list[str]:
    """In a vacancy study with interstitial sites, flag each model's interstitial jump-rate
    fit :data:`FRENKEL_TRANSIENT` unless its interstitials are sustained
    (:func:`interstitials_sustained`): its rate then mixes Frenkel-pair formation with
    migration. Edits ``report`` in place; returns the models flagged."""
    if cfg.defect.kind != "vacancy":
        return []
    flagged = []
    for model, mech in (report.get("mechanisms") or {}).items():
        fit = (mech.get("defect_jump_arrhenius") or {}).get("interstitial")
        if fit is None or interstitials_sustained(mech.get("by_T") or {}):
            continue
        for f in (fit, mech.get("interstitial_jump_arrhenius")):
            if isinstance(f, dict) and FRENKEL_TRANSIENT not in (f.get("flags") or []):
                f["flags"] = [*(f.get("flags") or []), FRENKEL_TRANSIENT]
        flagged.append(model)
    return flagged


def transit_fractions(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Fraction of mobile ion-frames on no site, per model and temperature (K as text)."""
    return {model: {T: float(r.get("transit_fraction", 0.0)) for T, r in (mech.get("by_T") or {}).items()}
            for model, mech in (report.get("mechanisms") or {}).items()}


def analyse(cfg: StudyConfig, sweep, cell: CellInfo, nebs: list[Path] | None = None) -> StudyAnalysis:
    """D(T), σ, Arrhenius fits and hop classes of the sweep (:func:`ionmd.analysis.report.write_report`),
    with the sites of the study's ``[sites]`` table (:func:`site_options`)."""
    from ionmd.analysis.report import write_report

    md_path, html_path = write_report(sweep.sweep_dir, species=cfg.mobile,
                                      charges=cfg.charges or None,
                                      reference=str(cell.perfect_data),
                                      neb=[str(p) for p in nebs] if nebs else None,
                                      site_options=site_options(cfg, cell))
    report = json.loads((sweep.sweep_dir / "report.json").read_text())
    notes = [f"{m}: interstitial jump-rate fit flagged {FRENKEL_TRANSIENT} (interstitials of a vacancy "
             "study that form and recombine)" for m in flag_transient_interstitials(cfg, report)]
    return StudyAnalysis(report_md=md_path, report_html=html_path, report=report,
                         hop_classes=hop_classes_of(report), notes=notes)


def hop_classes_of(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The hop classes of each model in the analysis report, most frequent first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for model, mech in (report.get("mechanisms") or {}).items():
        classes = [c.get("hop_class", {}) | {k: v for k, v in c.items() if k != "hop_class"}
                   for c in mech.get("hop_classes") or []]
        out[model] = sorted(classes, key=lambda c: -int(c.get("count", 0)))
    return out
