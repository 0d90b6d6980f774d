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
    """

    cell_data: Path
    perfect_data: Path
    n_atoms: int
    counts: dict[str, int]
    types: list[str]
    description: str
    defect: dict[str, Any] = field(default_factory=dict)

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
        d["cell_data"], d["perfect_data"] = str(self.cell_data), str(self.perfect_data)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(**(d | {"cell_data": Path(d["cell_data"]),
                           "perfect_data": Path(d["perfect_data"])}))


def stage_priors_s(cfg: StudyConfig, n_ranks: int) -> dict[str, float]:
    """Rough expected wall time (s) of each stage, for the progress display."""
    steps = cfg.md.n_equil + cfg.md.n_prod
    cost = sum(PRIOR_US_PER_ATOM_STEP_CLASSICAL if m.classical else PRIOR_US_PER_ATOM_STEP_TORCH
               for m in cfg.models)
    n_runs = len(cfg.md.temperatures_K) * len(cfg.md.seeds)
    groups = max(1, n_ranks // cfg.md.ranks_per_run)
    atoms_guess = 100.0
    md = n_runs * (PRIOR_RUN_OVERHEAD_S + 1e-6 * cost * atoms_guess * steps) / groups
    neb = PRIOR_NEB_S * cfg.neb.max_hop_classes * len(cfg.models) if cfg.neb.enabled else 0.0
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


def analyse(cfg: StudyConfig, sweep, cell: CellInfo, nebs: list[Path] | None = None) -> StudyAnalysis:
    """D(T), σ, Arrhenius fits and hop classes of the sweep (:func:`ionmd.analysis.report.write_report`)."""
    from ionmd.analysis.report import write_report

    md_path, html_path = write_report(sweep.sweep_dir, species=cfg.mobile,
                                      charges=cfg.charges or None,
                                      reference=str(cell.perfect_data),
                                      neb=[str(p) for p in nebs] if nebs else None)
    report = json.loads((sweep.sweep_dir / "report.json").read_text())
    return StudyAnalysis(report_md=md_path, report_html=html_path, report=report,
                         hop_classes=hop_classes_of(report))


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
    reference = read_structure(cell.perfect_data)
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
    model = ", ".join(f"{m.label}: " + (f"`pair_style {m.pair_style}`" if m.classical
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
              + (f", failed {sweep.failed}" if sweep.failed else ""), ""]
    return lines


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


def hop_barrier_table(cfg: StudyConfig, analysis: StudyAnalysis, neb_files: list[Path],
                      neb_results: list[dict[str, Any]]) -> list[str]:
    """Markdown: each hop class with its count, its jump-rate Ea and its NEB barrier."""
    from ionmd.analysis.hops import FEW_HOPS

    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    slugs = {_slug(m.label): m.label for m in cfg.models}
    for path, res in zip(neb_files, neb_results, strict=False):
        model = slugs.get(Path(path).parent.parent.name, "?")
        hop = res.get("hop")
        label = hop.get("label") if isinstance(hop, dict) else hop
        by_key[(model, str(label))] = res
    rows = []
    for model, classes in analysis.hop_classes.items():
        fits = ((analysis.report.get("mechanisms") or {}).get(model) or {}).get("hop_class_arrhenius") or {}
        for c in classes:
            fit = fits.get(c.get("label"))
            neb = by_key.get((model, str(c.get("label"))))
            few = ["few_hops"] if int(c.get("count", 0)) < FEW_HOPS else []
            flags = few + list((fit or {}).get("flags") or []) + list((neb or {}).get("flags") or [])
            rows.append(f"| {model} | {c.get('label')} | {c.get('count', 0)} | {_fmt_ea(fit)} | "
                        f"{_fmt_barrier(neb)} | {', '.join(dict.fromkeys(flags)) or '–'} |")
            for (m, label), ko in by_key.items():  # knock-offs of an L-I class (knockoff_jobs)
                if m == model and label.startswith(f"{c.get('label')}: "):
                    rows.append(f"| {model} | ↳ {label.split(': ', 1)[1]} | | | {_fmt_barrier(ko)} | "
                                f"{', '.join(ko.get('flags') or []) or '–'} |")
    if not rows:
        return []
    return ["## Hop classes: jump-rate Ea beside the NEB barrier", "",
            "Ea from the Arrhenius fit of each class's jump rate over the temperatures "
            "(95% interval); the NEB barrier of the same hop in the perfect cell with the "
            "defect moved by one hop, end points relaxed at fixed cell (climbing image). "
            "Rows with flags are not to be quoted.", "",
            "| model | hop class | hops | Ea from rates (eV) [95% CI] | NEB barrier (eV) | flags |",
            "|---|---|---|---|---|---|", *rows, ""]


def write_study_report(cfg: StudyConfig, out: Path, cell: CellInfo, sweep,
                       analysis: StudyAnalysis, nebs: list[Path]):
    """Write ``report.md``, ``report.html`` and ``study.json`` into ``out``."""
    from ionmd import __version__
    from ionmd.analysis.report import markdown_to_html
    from ionmd.study.pipeline import StudyOutcome, flag_lines
    from ionmd.study.report import embed_images

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
    md = _study_header(cfg, cell, sweep) + hop_barrier_table(cfg, analysis, nebs, neb_results)
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
             "results": analysis.report, "neb": neb_results, "fit": fits, "flags": flags}
    tmp = json_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(study, indent=2) + "\n")
    tmp.replace(json_path)
    return StudyOutcome(out=out, report_md=md_path, report_html=html_path, study_json=json_path,
                        flags=flags)
