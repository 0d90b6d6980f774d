"""The stages of ``ionmd study`` (see :mod:`ionmd.study.pipeline`), each usable alone.

Nothing here computes physics: structures come from :mod:`ionmd.driver.structure`,
MD from the sweep driver, numbers from :mod:`ionmd.analysis`, barriers from
:mod:`ionmd.neb`. These functions only connect them and collect flags.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.study.config import StudyConfig
from ionmd.study.progress import DemoProgress
from ionmd.tomlconfig import toml_value

#: Rough ETA priors (s): the model's cost is unknown before the first run.
PRIOR_US_PER_ATOM_STEP_TORCH = 200.0
PRIOR_US_PER_ATOM_STEP_CLASSICAL = 5.0
PRIOR_RUN_OVERHEAD_S = 6.0
PRIOR_NEB_S = 60.0
PRIOR_FIT_S = 1800.0  # sample + label + fit + export of one model (ionmd.study.fit_stage)
JOB_RECORD = "job.json"
"""What an NEB directory computes: model, hop label, mechanism, hop class, cell."""


@dataclass
class CellInfo:
    """What the structure stage built.

    Attributes
    ----------
    cell_data, perfect_data
        LAMMPS data files of the MD cell (with the defect) and of the perfect supercell.
    n_atoms, counts
        Atoms of the MD cell, in all and per element.
    types
        Element of each LAMMPS atom type, in type order.
    description
        How the cell was built.
    defect
        The removed or added atom: species, index, Wyckoff label, fractional and
        Cartesian position (empty without a defect).
    neb_data, neb_description, neb_n_atoms
        The perfect supercell of the NEBs when ``[neb] supercell`` differs from the MD
        cell's (None: the NEBs use ``perfect_data``), how it was built and its atoms.
    """

    cell_data: Path
    perfect_data: Path
    n_atoms: int
    counts: dict[str, int]
    types: list[str]
    description: str
    defect: dict[str, Any] = field(default_factory=dict)
    neb_data: Path | None = None
    neb_description: str = ""
    neb_n_atoms: int = 0

    @property
    def neb_reference(self) -> Path:
        """The perfect supercell the NEB end points are built from."""
        return self.neb_data or self.perfect_data

    def summary(self) -> str:
        """One line for the progress display."""
        d = self.defect
        where = ""
        if d:
            where = (f"; {d.get('kind')} {d.get('species')}"
                     + (f" at {d['wyckoff']}" if d.get("wyckoff") else "")
                     + (f" (atom {d['index']})" if d.get("index") is not None else ""))
        return f"{self.description}, {self.n_atoms} atoms{where}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        for key in ("cell_data", "perfect_data", "neb_data"):
            d[key] = None if d[key] is None else str(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(**(d | {key: Path(d[key]) for key in ("cell_data", "perfect_data", "neb_data")
                           if d.get(key) is not None}))


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


# --------------------------------------------------------------------------- structure

def defect_specs(cfg: StudyConfig) -> tuple[list[str], list[str]]:
    """The study's defect as ``(add, remove)`` specifications of :func:`make_structure`."""
    d = cfg.defect
    if d.kind == "none":
        return [], []
    frac = ",".join(f"{x:g}" for x in d.frac) if d.frac is not None else None
    if d.kind == "interstitial":
        return [f"{d.species}@{frac if frac else 'void'}"], []
    if d.index is not None:
        return [], [str(d.index)]
    if d.site is not None:
        site = d.site if d.site.startswith(f"{d.species}(") else f"{d.species}@{d.site}"
        return [], [site]
    return [], [f"{d.species}@{frac}" if frac else str(d.species)]


def build_cell(cfg: StudyConfig, outdir: Path) -> CellInfo:
    """Write the perfect supercell and the MD cell (with the defect); return what was built.

    A finished stage (``cell.json`` present) is read back, so a resumed study keeps
    exactly the cell its MD used.

    Raises
    ------
    InputError
        The structure cannot be read or built, the defect does not fit it, or a mobile
        species is missing from the cell.
    """
    from ionmd.driver.structure import make_structure

    record = outdir / "cell.json"
    if record.is_file():
        return CellInfo.from_dict(json.loads(record.read_text()))
    outdir.mkdir(parents=True, exist_ok=True)
    source = cfg.structure.file if cfg.structure.file is not None else cfg.structure.builtin
    size = {"supercell": cfg.structure.supercell or 1, "min_length_A": cfg.structure.min_length_A}
    perfect = make_structure(outdir / "perfect.data", source=source, types=cfg.structure.types,
                             **size)
    types = [perfect.type_map[t] for t in sorted(perfect.type_map)]
    add, remove = defect_specs(cfg)
    if cfg.defect.kind == "interstitial" and cfg.defect.species not in types:
        types.append(str(cfg.defect.species))
    built = make_structure(outdir / "cell.data", source=source, types=types, add=add,
                           remove=remove, **size)
    defect: dict[str, Any] = {}
    if built.defect_sites:
        defect = dict(built.defect_sites[0])
        if defect.get("species") != cfg.defect.species:
            raise InputError(f"{cfg.path}: defect.index {cfg.defect.index} is a "
                             f"{defect.get('species')} atom, not {cfg.defect.species}")
    info = CellInfo(cell_data=outdir / "cell.data", perfect_data=outdir / "perfect.data",
                    n_atoms=built.n_atoms, counts=dict(built.counts),
                    types=[built.type_map[t] for t in sorted(built.type_map)],
                    description=built.description, defect=defect)
    if cfg.neb.supercell and cfg.neb.supercell != str(cfg.structure.supercell or ""):
        neb = make_structure(outdir / "neb_perfect.data", source=source, types=info.types,
                             supercell=cfg.neb.supercell)
        info.neb_data, info.neb_description, info.neb_n_atoms = \
            outdir / "neb_perfect.data", neb.description, neb.n_atoms
    missing = [s for s in cfg.mobile if s not in info.counts]
    if missing:
        raise InputError(f"{cfg.path}: species.mobile names {', '.join(missing)}, which the "
                         f"cell does not contain ({', '.join(info.counts)})")
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    tmp.replace(record)
    return info


# --------------------------------------------------------------------------- fit

def fit_structure(cfg: StudyConfig):
    """The cells a study's fit samples (:class:`ionmd.study.fit_stage.FitStructure`)."""
    from ionmd.study.fit_stage import FitStructure

    add, remove = defect_specs(cfg)
    source = cfg.structure.file if cfg.structure.file is not None else cfg.structure.builtin
    return FitStructure(source=str(source), supercell=cfg.structure.supercell or 1,
                        min_length_A=cfg.structure.min_length_A, mobile=list(cfg.mobile),
                        vacancies=remove, interstitials=add)


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


# --------------------------------------------------------------------------- md

def sweep_toml(cfg: StudyConfig, cell: CellInfo, sweep_dir: Path) -> str:
    """The ``ionmd sweep`` definition of the study (absolute paths)."""
    md = cfg.md
    models = []
    for m in cfg.models:
        if m.classical:
            coeffs = ", ".join(toml_value(c) for c in m.pair_coeff)
            models.append(f"{m.label} = {{ pair_style = {toml_value(m.pair_style or '')}, "
                          f"pair_coeff = [{coeffs}] }}")
        else:
            models.append(f"{m.label} = {toml_value(str(m.path))}")
    return "\n".join([
        f"# Written by `ionmd study {cfg.path.name}`; run by",
        "#   mpirun -np N ionmd sweep sweep.toml --resume --ranks-per-run R",
        f"name = {toml_value(cfg.name)}",
        f"sweep_dir = {toml_value(str(sweep_dir))}",
        f"temperatures_K = [{', '.join(f'{t:g}' for t in md.temperatures_K)}]",
        f"seeds = [{', '.join(str(s) for s in md.seeds)}]",
        f"structure = {toml_value(str(cell.cell_data))}",
        "",
        "[models]",
        *models,
        "",
        "[md]",
        f"dt_fs = {md.dt_fs:g}",
        f"n_equil = {md.n_equil}",
        f"n_prod = {md.n_prod}",
        f"thermostat = {toml_value(md.thermostat)}",
        'ensemble = "nvt"',
        f"dump_every = {md.dump_every}",
        f"species = [{', '.join(toml_value(s) for s in cfg.mobile)}]",
        f"restart_every = {md.restart_every}",
        f"thermo_every = {md.thermo_every}",
        "",
    ])


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


# --------------------------------------------------------------------------- analysis

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
                       leave_radius_A=s.leave_radius_A, **given)


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


# --------------------------------------------------------------------------- neb

def study_potential(cfg: StudyConfig, label: str, symbols: list[str]):
    """The model ``label`` of the study as NEB potential lines (:class:`ionmd.neb.potential.Potential`)."""
    from ionmd.neb.potential import Potential

    model = next(m for m in cfg.models if m.label == label)
    if model.classical:
        return Potential.from_lines(str(model.pair_style), model.pair_coeff, symbols)
    return Potential.from_model(str(model.path), symbols)


def hop_mechanism(hop: dict[str, Any]) -> str:
    """The mechanism an NEB job computes: ``knockoff`` (a concerted L-I-L move),
    ``direct`` (I-I), ``vacancy`` (L-L), else ``FROM-TO`` of the site kinds."""
    if "knockoff" in hop:
        return "knockoff"
    kinds = (str(hop.get("from_kind", "?")), str(hop.get("to_kind", "?")))
    return {("I", "I"): "direct", ("L", "L"): "vacancy"}.get(kinds, "-".join(kinds))


def classes_in_cell(classes: list[dict[str, Any]], from_cell, to_cell) -> list[dict[str, Any]]:
    """Hop classes with ``start_frac``/``end_frac`` moved from one supercell's fractional
    coordinates to another's (two supercells of the same structure with the same origin:
    the Cartesian positions of the sites are the same), wrapped into [0, 1)."""
    import numpy as np

    to_frac = np.linalg.inv(np.asarray(to_cell, dtype=float))
    out = []
    for c in classes:
        moved = dict(c)
        for key in ("start_frac", "end_frac"):
            if c.get(key) is not None:
                f = np.asarray(c[key], dtype=float) @ np.asarray(from_cell, dtype=float) @ to_frac
                moved[key] = [float(x) for x in np.round(f % 1.0, 10) % 1.0]
        out.append(moved)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "hop"


def run_hop_nebs(cfg: StudyConfig, outdir: Path, cell: CellInfo, analysis: StudyAnalysis,
                 n_ranks: int, progress: DemoProgress) -> list[Path]:
    """NEB barrier of each hop class seen in the MD, per model (at most ``neb.max_hop_classes``).

    The end points are the perfect supercell with the defect moved by one hop
    (:func:`ionmd.neb.hops.hop_barrier`), relaxed at fixed cell; the guards of
    :mod:`ionmd.neb.result` flag bands that are not to be quoted. A class whose NEB
    already finished (``neb.json`` present) is read back. Returns the result files.
    """
    if not cfg.neb.enabled or cfg.neb.max_hop_classes == 0:
        return []
    from ionmd.driver.structure import read_structure
    from ionmd.errors import IonmdError
    from ionmd.neb.concerted import concerted_barrier
    from ionmd.neb.hops import hop_barrier
    from ionmd.neb.lammps_input import NEBSettings

    jobs = [(model, c) for model, classes in analysis.hop_classes.items()
            for c in classes[: cfg.neb.max_hop_classes]]
    if not jobs:
        progress.message("NEB: no hop class was seen in the MD, so there is no hop to compute")
        return []
    reference = read_structure(cell.neb_reference)
    if cell.neb_data is not None:  # the classes are in the MD cell's fractional coordinates
        md_cell = read_structure(cell.perfect_data).cell
        jobs = [(model, classes_in_cell([c], md_cell, reference.cell)[0]) for model, c in jobs]
    if cfg.defect.kind == "interstitial":  # L-I classes are halves of knock-offs
        jobs = knockoff_jobs(jobs, reference, cfg.neb.max_hop_classes, progress)
    settings = NEBSettings(ftol_eV_A=cfg.neb.ftol_eV_A, n1_steps=cfg.neb.steps,
                           n2_steps=cfg.neb.climb_steps)
    n_images = cfg.neb.images
    files: list[Path] = []
    for k, (model, hop) in enumerate(jobs):
        target = outdir / _slug(model) / f"{k:02d}_{_slug(str(hop['label']))}"
        result = target / "neb.json"
        files.append(result)
        target.mkdir(parents=True, exist_ok=True)
        (target / JOB_RECORD).write_text(json.dumps(
            {"model": model, "label": str(hop.get("label")), "mechanism": hop_mechanism(hop),
             "hop_class": str(hop.get("hop_class", hop.get("label"))),
             "cell": str(cell.neb_reference)}, indent=2) + "\n")
        if result.is_file():
            continue
        progress.update(k / len(jobs), f"{model}: hop class {hop['label']} "
                        f"({k + 1}/{len(jobs)}, {n_images} images)", force=True)
        try:
            run = concerted_barrier if "knockoff" in hop else hop_barrier
            run(reference, hop.get("knockoff", hop), study_potential(cfg, model, cell.types),
                target, species=cfg.defect.species, n_images=n_images, settings=settings,
                ranks_per_image=max(1, cfg.neb.ranks_per_image), hop_type=hop.get("hop_type", -1))
        except IonmdError as exc:  # one failed band must not lose the others
            target.mkdir(parents=True, exist_ok=True)
            (target / "neb_failed.json").write_text(json.dumps(
                {"model": model, "hop": hop.get("label"), "error": str(exc)}, indent=2) + "\n")
            files[-1] = target / "neb_failed.json"
            progress.message(f"NEB {model} {hop['label']} failed: {exc}")
    return files


def knockoff_jobs(jobs: list[tuple[str, dict[str, Any]]], reference, cap: int,
                  progress: DemoProgress) -> list[tuple[str, dict[str, Any]]]:
    """NEB jobs of an interstitial study: each L-I class becomes its knock-off types.

    A single-atom band of an L-I class from the perfect reference is a Frenkel pair that
    relaxes back, so each such class is replaced by its symmetry-distinct knock-offs
    (:func:`ionmd.neb.concerted.knockoff_types_of_class`, most collinear first), labelled
    ``<class>: knock-off ...``; I-I and L-L classes stay single-atom hops. At most ``cap``
    jobs per model: every class (its most collinear knock-off) first, then the other types.
    """
    from dataclasses import replace

    from ionmd.errors import IonmdError
    from ionmd.neb.concerted import knockoff_types_of_class

    first: dict[str, list[dict[str, Any]]] = {}
    more: dict[str, list[dict[str, Any]]] = {}
    for model, c in jobs:
        types = []
        if sorted((str(c.get("from_kind")), str(c.get("to_kind")))) == ["I", "L"]:
            try:
                types = knockoff_types_of_class(reference, c)
            except IonmdError as exc:
                progress.message(f"NEB {model} {c.get('label')}: no knock-off ({exc}); "
                                 "single-atom band")
        kos = [{"label": f"{c.get('label')}: {t.label}", "hop_class": c.get("label"),
                "knockoff": replace(t.representative, label=f"{c.get('label')}: {t.label}"),
                "hop_type": t.index} for t in types] or [c]
        first.setdefault(model, []).append(kos[0])
        more.setdefault(model, []).extend(kos[1:])
    return [(model, j) for model in first for j in (first[model] + more[model])[:cap]]


# --------------------------------------------------------------------------- report

def collect_flags(obj: Any, where: str = "") -> list[dict[str, str]]:
    """Every ``flags`` entry anywhere in a result tree, with where it was found."""
    found: list[dict[str, str]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "flags" and isinstance(value, list):
                for f in value:
                    if isinstance(f, dict):
                        found.append({"where": where or "study", **{k: str(v) for k, v in f.items()}})
                    else:
                        found.append({"where": where or "study", "flag": str(f)})
            else:
                found += collect_flags(value, here)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            label = value.get("label") or value.get("T_K") if isinstance(value, dict) else None
            found += collect_flags(value, f"{where}[{label if label is not None else i}]")
    return found


UNITS = {"D": "cm^2/s", "sigma": "mS/cm", "Ea": "eV", "rate": "1/ps", "T": "K",
         "barrier": "eV", "time": "ps", "length": "Angstrom", "interval": "95% unless named"}


def _study_header(cfg: StudyConfig, cell: CellInfo, sweep) -> list[str]:
    md = cfg.md
    model = ", ".join(f"{m.display}: " + (f"`pair_style {m.pair_style}`" if m.classical
                                         else f"`{m.path}` (pair_style mlip/torch)")
                      for m in cfg.models)
    lines = [f"# ionmd study: {cfg.name}", "",
             f"- Structure: {cell.description} ({cell.n_atoms} atoms: "
             + ", ".join(f"{n} {s}" for s, n in cell.counts.items()) + ")"]
    if cell.defect:
        d = cell.defect
        pos = d.get("frac")
        lines.append(f"- Defect: {d.get('kind')} of {d.get('species')}"
                     + (f" at Wyckoff {d['wyckoff']}" if d.get("wyckoff") else "")
                     + (f", atom index {d['index']}" if d.get("index") is not None else "")
                     + (f", fractional ({', '.join(f'{x:.4f}' for x in pos)})" if pos else ""))
    lines += [f"- Model{'s' if len(cfg.models) > 1 else ''}: {model}",
              f"- Mobile species: {', '.join(cfg.mobile)}"
              + (f"; formal charges {', '.join(f'{s} {q:+g}' for s, q in cfg.charges.items())}"
                 if cfg.charges else "; no charges given, so no conductivity"),
              f"- MD: NVT ({md.thermostat}), {', '.join(f'{t:g}' for t in md.temperatures_K)} K x "
              f"{len(md.seeds)} seed(s), {md.n_equil} + {md.n_prod} steps of {md.dt_fs:g} fs "
              f"({md.n_prod * md.dt_fs / 1000:g} ps production); runs done {sweep.done}/{sweep.n_runs}"
              + (f", failed {sweep.failed}" if sweep.failed else "")]
    if cfg.neb.enabled and cfg.neb.max_hop_classes:
        where = (f"{cell.neb_description} ({cell.neb_n_atoms} atoms, perfect)" if cell.neb_data
                 else "the MD supercell without its defect")
        lines.append(f"- NEB: {cfg.neb.images} images in {where}, force tolerance "
                     f"{cfg.neb.ftol_eV_A:g} eV/Å, up to {cfg.neb.max_hop_classes} band(s) per model")
    return lines + [""]


def _rebase_images(md_text: str, prefix: str) -> str:
    """Point the analysis report's relative image links at its directory."""
    return re.sub(r"!\[([^\]]*)\]\((?!/|https?:)([^)]+)\)", lambda m: f"![{m.group(1)}]({prefix}/{m.group(2)})",
                  md_text)


def _fmt_ea(fit: dict[str, Any] | None) -> str:
    if not fit or fit.get("Ea_eV") is None:
        return "–"
    lo, hi = (fit.get("Ea_ci95_eV") or [None, None])[:2]
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{fit['Ea_eV']:.3f}{ci}"


def _fmt_barrier(neb: dict[str, Any] | None) -> str:
    if neb is None:
        return "not computed"
    if "error" in neb:
        return "failed"
    b = neb.get("barrier_forward_eV")
    if b is None:
        return "no barrier (see flags)"
    return f"{b:.3f}" + ("" if neb.get("climb", True) else " (no climbing image)")


@dataclass
class ReferenceBarriers:
    """Barriers from elsewhere to show beside the NEB column (``[neb] reference``).

    Attributes
    ----------
    source
        What the numbers are (the file's ``reference`` text) and the file.
    barriers
        Matching key (a hop label, a hop-class label or a mechanism name such as
        ``knockoff``, ``direct``, ``vacancy``) -> the entry (``barrier_eV`` and whatever
        else the file states: ``cell``, ``n_atoms``, ``converged``).
    """

    source: str
    barriers: dict[str, dict[str, Any]]

    def match(self, *names: str) -> dict[str, Any] | None:
        """The first entry whose key equals one of ``names`` (case, spaces, '-', '_' ignored)."""
        by_norm = {_norm(k): v for k, v in self.barriers.items()}
        for name in names:
            if name and _norm(name) in by_norm:
                return by_norm[_norm(name)]
        return None


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9()]+", "", str(key).lower())


def _barrier_entry(path: Path, key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        raise InputError(f"{path}: barriers_eV.{key}: expected a number (eV) or a table, got {value!r}")
    if isinstance(value, int | float):
        return {"barrier_eV": float(value)}
    if isinstance(value, dict) and ("barrier_eV" in value):
        b = value["barrier_eV"]
        if b is not None and (isinstance(b, bool) or not isinstance(b, int | float)):
            raise InputError(f"{path}: barriers_eV.{key}.barrier_eV: expected a number (eV), got {b!r}")
        return dict(value)
    raise InputError(f"{path}: barriers_eV.{key}: expected a number (eV) or a table with "
                     f"'barrier_eV', got {value!r}")


def load_reference_barriers(path: str | Path, entry: str | None = None) -> ReferenceBarriers:
    """Read a file of reference barriers (JSON).

    Format: ``{"reference": "what they are", "barriers_eV": {KEY: BARRIER}}`` with each
    BARRIER a number (eV) or a table holding ``barrier_eV`` (null: not converged), or,
    for a file with several sets, ``{"barriers_eV": {SET: {KEY: BARRIER}}}`` and
    ``entry`` naming the set. KEY is matched against a hop's label, its hop class and
    its mechanism (:func:`hop_mechanism`).

    Raises
    ------
    InputError
        Unreadable file, no ``barriers_eV`` table, a set file without (or with an
        unknown) ``entry``, or a barrier that is not a number.
    """
    from ionmd.jsonfile import read_json

    path = Path(path)
    raw = read_json(path, "the reference barriers file of [neb] reference")
    table = raw.get("barriers_eV") if isinstance(raw, dict) else None
    if not isinstance(table, dict) or not table:
        raise InputError(f"{path}: expected a table 'barriers_eV' of reference barriers (eV)")
    nested = all(isinstance(v, dict) and "barrier_eV" not in v for v in table.values())
    if nested:
        if entry is None or entry not in table:
            what = "names no set of it" if entry is not None else "is needed: the file has several sets"
            raise InputError(f"{path}: [neb] reference_entry {entry!r} {what}; its sets: "
                             + ", ".join(repr(k) for k in table))
        table = table[entry]
    elif entry is not None:
        raise InputError(f"{path}: [neb] reference_entry {entry!r} given, but the file has one set")
    barriers = {str(k): _barrier_entry(path, str(k), v) for k, v in table.items()}
    source = str(raw.get("reference", "reference barriers")) + f" ({path.name}"
    return ReferenceBarriers(source=source + (f", {entry})" if entry else ")"), barriers=barriers)


def study_references(cfg: StudyConfig) -> ReferenceBarriers | None:
    """The reference barriers of the study (``[neb] reference``), or None."""
    neb = getattr(cfg, "neb", None)
    if neb is None or neb.reference is None:
        return None
    return load_reference_barriers(neb.reference, neb.reference_entry)


def _neb_job(path: Path, res: dict[str, Any]) -> dict[str, Any]:
    """What an NEB result computes (its ``job.json``; older results: from the hop label)."""
    record = Path(path).parent / JOB_RECORD
    if record.is_file():
        try:
            return json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    hop = res.get("hop")
    label = str(hop.get("label") if isinstance(hop, dict) else hop)
    return {"label": label, "hop_class": label.split(": ", 1)[0],
            "mechanism": "knockoff" if ": knock-off" in label else ""}


def _ref_cells(ref: dict[str, Any] | None, neb: dict[str, Any] | None) -> list[str]:
    """The reference barrier and NEB minus reference, as two table cells."""
    if ref is None:
        return ["–", "–"]
    b = ref.get("barrier_eV")
    if b is None:
        return ["not converged", "–"]
    mine = (neb or {}).get("barrier_forward_eV")
    return [f"{b:.3f}", f"{mine - b:+.3f}" if mine is not None and "error" not in (neb or {}) else "–"]


def hop_barrier_table(cfg: StudyConfig, analysis: StudyAnalysis, neb_files: list[Path],
                      neb_results: list[dict[str, Any]],
                      references: ReferenceBarriers | None = None) -> list[str]:
    """Markdown: each hop class with its count, its jump-rate Ea and its NEB barrier.

    With ``references``, two more columns: the reference barrier matched by hop label,
    hop class or mechanism, and the NEB barrier minus it.
    """
    from ionmd.analysis.hops import FEW_HOPS

    by_key: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    slugs = {_slug(m.label): m.label for m in cfg.models}
    for path, res in zip(neb_files, neb_results, strict=False):
        model = slugs.get(Path(path).parent.parent.name, "?")
        hop = res.get("hop")
        label = hop.get("label") if isinstance(hop, dict) else hop
        by_key[(model, str(label))] = (res, _neb_job(path, res))

    def ref(job: dict[str, Any] | None, *names: str) -> list[str]:
        if references is None:
            return []
        j = job or {}
        return _ref_cells(references.match(str(j.get("label", "")), *names, str(j.get("hop_class", "")),
                                           str(j.get("mechanism", ""))),
                          by_key.get((j.get("model", ""), str(j.get("label"))), ({}, {}))[0] or None)

    rows = []
    for model, classes in analysis.hop_classes.items():
        fits = ((analysis.report.get("mechanisms") or {}).get(model) or {}).get("hop_class_arrhenius") or {}
        for c in classes:
            fit = fits.get(c.get("label"))
            neb, job = by_key.get((model, str(c.get("label"))), (None, None))
            as_knockoffs = neb is None and any(m == model and lab.startswith(f"{c.get('label')}: ")
                                               for m, lab in by_key)
            few = ["few_hops"] if int(c.get("count", 0)) < FEW_HOPS else []
            flags = few + list((fit or {}).get("flags") or []) + list((neb or {}).get("flags") or [])
            extra = ref(job and job | {"model": model}, str(c.get("label"))) if neb is not None \
                else (["–", "–"] if references is not None else [])
            rows.append(" | ".join([f"| {model}", str(c.get("label")), str(c.get("count", 0)),
                                    _fmt_ea(fit), "its knock-offs below" if as_knockoffs else _fmt_barrier(neb),
                                    *extra,
                                    (", ".join(dict.fromkeys(flags)) or "–")]) + " |")
            for (m, label), (ko, kjob) in by_key.items():  # knock-offs of an L-I class (knockoff_jobs)
                if m == model and label.startswith(f"{c.get('label')}: "):
                    extra = ref(kjob | {"model": model, "label": label})
                    rows.append(" | ".join([f"| {model}", f"↳ {label.split(': ', 1)[1]}", "", "",
                                            _fmt_barrier(ko), *extra,
                                            ", ".join(ko.get("flags") or []) or "–"]) + " |")
                    rows[-1] = rows[-1].replace("|  |  |", "| | |")
    if not rows:
        return []
    head = ["model", "hop class", "hops", "Ea from rates (eV) [95% CI]", "NEB barrier (eV)"]
    if references is not None:
        head += ["reference (eV)", "NEB − reference (eV)"]
    head.append("flags")
    notes = [] if references is None else [
        f"Reference barriers: {references.source}, matched by hop, hop class or mechanism."]
    return ["## Hop classes: jump-rate Ea beside the NEB barrier", "",
            "Ea from the Arrhenius fit of each class's jump rate over the temperatures "
            "(95% interval); the NEB barrier of the same hop in the perfect cell with the "
            "defect moved by one hop, end points relaxed at fixed cell (climbing image). "
            "Rows with flags are not to be quoted.", *(["", *notes] if notes else []), "",
            "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows, ""]


def model_facts(model) -> dict[str, Any] | None:
    """The entry for ``model``'s file in its ``provenance`` JSON (entries keyed by name, each
    with a ``file``), or None."""
    if model.provenance is None or model.path is None:
        return None
    from ionmd.jsonfile import read_json

    facts = read_json(model.provenance, f"the provenance file of model {model.label}")
    entries = facts.values() if isinstance(facts, dict) else []
    return next((e for e in entries if isinstance(e, dict) and e.get("file") == Path(model.path).name),
                None)


def training_text(facts: dict[str, Any] | None) -> str:
    """E.g. ``300 (+57 valid, 57 test); held-out force RMSE 43.5 meV/Å`` (– without facts)."""
    if not facts or "n_train" not in facts:
        return "–"
    text = f"{facts['n_train']} (+{facts.get('n_valid', '?')} valid, {facts.get('n_test', '?')} test)"
    if facts.get("test_force_rmse_meV_A") is not None:
        text += f"; held-out force RMSE {facts['test_force_rmse_meV_A']:.1f} meV/Å"
    return text


def study_costs(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """Measured MD cost of each model (:func:`ionmd.study.cost.model_cost` over its done runs)."""
    from ionmd.driver.sweepdir import read_index
    from ionmd.study.cost import model_cost

    index = read_index(sweep_dir)
    by_model: dict[str, list[Path]] = {}
    for run in index.with_status("done"):
        by_model.setdefault(run.model, []).append(index.run_dir(run))
    return {m: model_cost(dirs).to_dict() for m, dirs in by_model.items()}


def mechanism_shares(mech: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Share of each mechanism among the moves of each defect, all temperatures and seeds.

    For each defect kind of the hop analysis (``vacancy``, ``interstitial``: the keys of
    its ``defect_jump_arrhenius``, else those with events) the events of its mechanisms
    (:data:`ionmd.analysis.mechanism_report.INTERSTITIAL_HOPS`, ``VACANCY_HOPS``) are
    summed over temperatures (defects present in the reference, or with events); returns ``{kind: {"n": total, mechanism: {"count", "share"}}}``.
    """
    from ionmd.analysis.mechanism_report import INTERSTITIAL_HOPS, VACANCY_HOPS

    groups = {"interstitial": INTERSTITIAL_HOPS, "vacancy": VACANCY_HOPS}
    totals: dict[str, int] = {}
    for r in (mech.get("by_T") or {}).values():
        for name, n in (r.get("counts") or {}).items():
            totals[name] = totals.get(name, 0) + int(n)
    first = next(iter((mech.get("by_T") or {}).values()), {})
    present = [k for k, n in (("vacancy", first.get("n_vacancies")),
                              ("interstitial", first.get("n_interstitial_ions"))) if n]
    kinds = list(dict.fromkeys([*(mech.get("defect_jump_arrhenius") or {}), *present])) or [
        k for k, names in groups.items() if any(totals.get(n, 0) for n in names)]
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        names = groups.get(kind, ())
        n = sum(totals.get(x, 0) for x in names)
        out[kind] = {"n": n} | {x: {"count": totals.get(x, 0),
                                    "share": totals.get(x, 0) / n if n else None} for x in names}
    return out


def _pm(fit: dict[str, Any] | None) -> str:
    """``Ea ± half the 95% interval`` (eV), or –."""
    if not fit or fit.get("Ea_eV") is None:
        return "–"
    lo, hi = (fit.get("Ea_ci95_eV") or [None, None])[:2]
    return f"{fit['Ea_eV']:.3f}" + (f" ± {(hi - lo) / 2:.3f}" if lo is not None and hi is not None else "")


def _shares_text(shares: dict[str, dict[str, Any]]) -> str:
    parts = []
    for kind, d in shares.items():
        inner = [f"{x} {v['share']:.2f} ({v['count']} of {d['n']})" for x, v in d.items()
                 if x != "n" and v["share"] is not None]
        parts.append(f"{kind}: " + ("; ".join(inner) if inner else "no move seen"))
    return " / ".join(parts) or "–"


def summary_columns(cfg: StudyConfig, jobs: list[dict[str, Any]]) -> list[str]:
    """The NEB columns of the summary: one per mechanism, or per hop where a model has two
    bands of one mechanism (in the order computed)."""
    models = {j.get("model") for j in jobs}
    keys: list[str] = []
    for j in jobs:
        mech = str(j.get("mechanism") or j.get("label"))
        per_model = [sum(1 for x in jobs if x.get("model") == m and x.get("mechanism") == mech)
                     for m in models]
        key = mech if max(per_model, default=0) <= 1 else str(j.get("label"))
        if key not in keys:
            keys.append(key)
    return keys


def _job_key(j: dict[str, Any], columns: list[str]) -> str:
    mech = str(j.get("mechanism") or j.get("label"))
    return mech if mech in columns else str(j.get("label"))


def study_summary(cfg: StudyConfig, analysis: StudyAnalysis, costs: dict[str, dict[str, Any]],
                  neb_files: list[Path], neb_results: list[dict[str, Any]],
                  references: ReferenceBarriers | None) -> dict[str, Any]:
    """The numbers of the summary table, per model, machine-readable (``study.json``)."""
    jobs = []
    slugs = {_slug(m.label): m.label for m in cfg.models}
    for path, res in zip(neb_files, neb_results, strict=False):
        job = _neb_job(path, res)
        job["model"] = job.get("model") or slugs.get(Path(path).parent.parent.name, "?")
        jobs.append(job | {"result": res})
    columns = summary_columns(cfg, jobs)
    models: dict[str, Any] = {}
    for m in cfg.models:
        res = (analysis.report.get("models") or {}).get(m.label) or {}
        mech = (analysis.report.get("mechanisms") or {}).get(m.label) or {}
        nebs = {}
        for j in jobs:
            if j["model"] == m.label and _job_key(j, columns) not in nebs:
                r = j["result"]
                nebs[_job_key(j, columns)] = {
                    "label": j.get("label"), "barrier_eV": None if "error" in r else r.get("barrier_forward_eV"),
                    "flags": list(r.get("flags") or []) + (["neb_failed"] if "error" in r else []),
                    "climb": r.get("climb"), "n_atoms": r.get("n_atoms")}
        cost = costs.get(m.label) or {}
        models[m.label] = {
            "title": m.display, "file": str(m.path) if m.path else None,
            "training": model_facts(m) or None,
            "arrhenius_D": res.get("arrhenius"),
            "defect_jump_arrhenius": mech.get("defect_jump_arrhenius") or {},
            "mechanism_shares": mechanism_shares(mech) if mech else {},
            "transit_fraction_by_T": transit_fractions(analysis.report).get(m.label, {}),
            "neb": nebs, "us_per_atom_step": cost.get("us_per_atom_step"), "cost": cost or None}
    refs = {}
    if references is not None:
        for key in columns:
            j = next((x for x in jobs if _job_key(x, columns) == key), {})
            hit = references.match(key, str(j.get("label", "")), str(j.get("hop_class", "")),
                                   str(j.get("mechanism", "")))
            if hit is not None:
                refs[key] = hit
    return {"neb_columns": columns, "models": models, "sites": sites_record(cfg), "reference": refs,
            "reference_source": references.source if references is not None else None}


def sites_record(cfg: StudyConfig) -> dict[str, Any]:
    """The site options of the analysis (``[sites]``), for ``study.json``."""
    return asdict(cfg.sites) | {"voids": cfg.sites.voids}


def sites_line(cfg: StudyConfig, analysis: StudyAnalysis) -> str:
    """One header line: which sites the hops are counted between, and the ion-frames in transit."""
    s = cfg.sites
    what = ("lattice sites only (`[sites] interstitials = \"none\"`): an ion off every lattice site "
            "is in transit" if not s.voids else "lattice sites and the largest voids (`interstitials = \"auto\"`)"
            if s.interstitials == "auto" else f"lattice sites and {len(s.interstitials)} given interstitial "
            "position(s) of the unit cell")
    parts = []
    for model, by_T in transit_fractions(analysis.report).items():
        if by_T:
            vals = [100 * v for v in by_T.values()]
            temps = [float(t) for t in by_T]
            parts.append(f"{model} {min(vals):.1f}-{max(vals):.1f}% ({min(temps):g}-{max(temps):g} K)")
    return f"- Sites: {what}; ion-frames in transit: " + ("; ".join(parts) if parts else "–")


def summary_table(summary: dict[str, Any]) -> list[str]:
    """Markdown: one row per model (and one for the reference barriers) of the main numbers."""
    columns = summary["neb_columns"]
    head = ["model", "training set", "Ea from D ± 95% (eV)", "Ea from defect jump rate ± 95% (eV)",
            "D(300 K) (cm²/s) [95% CI]", *[f"NEB {c} (eV)" for c in columns],
            "share of defect moves", "µs/atom/step"]
    rows = []
    for m in summary["models"].values():
        fit = m.get("arrhenius_D") or {}
        d300 = "–"
        if fit.get("D300K_cm2_s") is not None:
            lo, hi = (fit.get("D300K_ci95_cm2_s") or [None, None])[:2]
            d300 = f"{fit['D300K_cm2_s']:.2e}" + (f" [{lo:.1e}, {hi:.1e}]" if lo is not None and hi is not None
                                                  else "")
        jumps = "; ".join(f"{k}: {_pm(f)}" + (f" ({FRENKEL_TRANSIENT})" if FRENKEL_TRANSIENT in (f.get("flags") or [])
                                                else "")
                          for k, f in (m.get("defect_jump_arrhenius") or {}).items()) or "–"
        nebs = []
        for c in columns:
            n = (m.get("neb") or {}).get(c)
            if n is None:
                nebs.append("not computed")
            elif n["barrier_eV"] is None:
                nebs.append("no barrier (see flags)")
            else:
                nebs.append(f"{n['barrier_eV']:.3f}" + (" (flagged)" if n["flags"] else ""))
        cost = m.get("us_per_atom_step")
        name = m["title"] + (f" ({Path(m['file']).name})" if m.get("file") else "")
        rows.append([name, training_text(m.get("training")), _pm(fit), jumps, d300, *nebs,
                     _shares_text(m.get("mechanism_shares") or {}),
                     f"{cost:.0f}" if cost else "–"])
    if summary.get("reference"):
        ref = summary["reference"]
        rows.append(["reference", "–", "–", "–", "–",
                     *[("–" if c not in ref else "not converged" if ref[c].get("barrier_eV") is None
                        else f"{ref[c]['barrier_eV']:.3f}") for c in columns], "–", "–"])
    lines = ["## Summary", "",
             "Ea from D: weighted Arrhenius fit of the tracer D (seeds combined). Ea from defect "
             "jump rate: Arrhenius fit of the defect's jump rate counted by the hop analysis "
             "(Poisson errors), far better determined than the tracer D in short runs. NEB: the "
             "barrier of the first band of each mechanism (details and flags in the hop-class "
             "table). Share of defect moves: events of each mechanism among the defect's moves, "
             "all temperatures and seeds. µs/atom/step: core time per atom and MD step from the "
             "LAMMPS logs, sum(Loop time x ranks) / sum(steps x atoms); a loaded machine overstates it."]
    if summary.get("reference_source"):
        lines.append(f"Reference row: {summary['reference_source']}.")
    clean = [[c.replace("|", "/") for c in r] for r in rows]
    return [*lines, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(r) + " |" for r in clean], ""]


def embed_images(markdown: str, base: Path) -> str:
    """Replace ``![alt](file.png)`` lines by ``![alt](data:image/png;base64,...)``."""
    import base64

    def repl(m: re.Match) -> str:
        data = base64.b64encode((base / m.group(2)).read_bytes()).decode("ascii")
        return f"![{m.group(1)}](data:image/png;base64,{data})"

    return re.sub(r"^!\[([^\]]*)\]\(([^)]+\.png)\)$", repl, markdown, flags=re.MULTILINE)


def write_study_report(cfg: StudyConfig, out: Path, cell: CellInfo, sweep,
                       analysis: StudyAnalysis, nebs: list[Path]):
    """Write ``report.md``, ``report.html`` and ``study.json`` into ``out``."""
    from ionmd import __version__
    from ionmd.analysis.report import markdown_to_html
    from ionmd.study.pipeline import StudyOutcome, flag_lines

    flags = collect_flags(analysis.report, "results")
    if sweep.failed:
        flags += [{"where": "md", "flag": "runs_failed", "detail": f} for f in sweep.failures]
    neb_results = []
    for path in nebs:
        try:
            neb_results.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            neb_results.append({"error": f"{path}: unreadable ({exc})"})
        if "error" in neb_results[-1]:
            flags.append({"where": "neb", "flag": "neb_failed", "detail": str(neb_results[-1]["error"])})
    flags += collect_flags(neb_results, "neb")
    fits = fit_records(cfg, out)
    flags += collect_flags(fits, "fit")
    if cfg.neb.enabled and cfg.neb.max_hop_classes and not any(analysis.hop_classes.values()):
        flags.append({"where": "neb", "flag": "no_hops_seen",
                      "detail": "no hop class was seen in the MD, so no barrier was computed"})
    body = analysis.report_md.read_text().split("\n", 1)[1]  # drop its title line
    rel = Path(analysis.report_md.parent).relative_to(out) if analysis.report_md.is_relative_to(out) \
        else analysis.report_md.parent
    references = study_references(cfg)
    costs = study_costs(sweep.sweep_dir)
    summary = study_summary(cfg, analysis, costs, nebs, neb_results, references)
    header = _study_header(cfg, cell, sweep)
    header.insert(len(header) - 1, sites_line(cfg, analysis))
    md = (header + summary_table(summary)
          + hop_barrier_table(cfg, analysis, nebs, neb_results, references))
    md += [_rebase_images(body, str(rel))]
    md += ["## Flags: numbers not to be quoted", ""]
    md += [f"- {line}" for line in flag_lines(flags)] if flags else ["- none"]
    text = "\n".join(md) + "\n"
    md_path, html_path, json_path = out / "report.md", out / "report.html", out / "study.json"
    md_path.write_text(text)
    html_path.write_text(markdown_to_html(embed_images(text, out), title=f"ionmd study: {cfg.name}"))
    study = {"name": cfg.name, "ionmd_version": __version__, "units": UNITS,
             "config": cfg.to_dict(), "cell": cell.to_dict(),
             "md": {"sweep_dir": str(sweep.sweep_dir), "runs": sweep.n_runs, "done": sweep.done,
                    "failed": sweep.failed, "failures": sweep.failures},
             "summary": summary, "cost": costs,
             "results": analysis.report, "neb": neb_results, "fit": fits, "flags": flags}
    tmp = json_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(study, indent=2) + "\n")
    tmp.replace(json_path)
    return StudyOutcome(out=out, report_md=md_path, report_html=html_path, study_json=json_path,
                        flags=flags)
