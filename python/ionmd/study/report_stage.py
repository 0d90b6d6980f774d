"""The ``report`` stage of ``ionmd study``: the summary, the hop-class table, the flags, and ``study.json``.

:func:`write_study_report` writes ``report.md``, a self-contained ``report.html`` and
``study.json``; :func:`collect_flags` gathers every reason a number is not to be quoted.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ionmd.jsonfile import write_json_atomic
from ionmd.study.analysis_stage import StudyAnalysis, transit_fractions
from ionmd.study.cell_stage import CellInfo
from ionmd.study.config import StudyConfig
from ionmd.study.md_stage import fit_records
from ionmd.study.neb_stage import (
    ReferenceBarriers,
    neb_job_record,
    path_slug,
    study_references,
)


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
    slugs = {path_slug(m.label): m.label for m in cfg.models}
    for path, res in zip(neb_files, neb_results, strict=False):
        model = slugs.get(Path(path).parent.parent.name, "?")
        hop = res.get("hop")
        label = hop.get("label") if isinstance(hop, dict) else hop
        by_key[(model, str(label))] = (res, neb_job_record(path, res))

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
    slugs = {path_slug(m.label): m.label for m in cfg.models}
    for path, res in zip(neb_files, neb_results, strict=False):
        job = neb_job_record(path, res)
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
    d = asdict(cfg.sites)
    d["lattice"] = str(cfg.sites.lattice) if cfg.sites.lattice is not None else None
    return d | {"voids": cfg.sites.voids}


def sites_line(cfg: StudyConfig, analysis: StudyAnalysis) -> str:
    """One header line: which sites the hops are counted between, and the ion-frames in transit."""
    s = cfg.sites
    what = ("lattice sites only (`[sites] interstitials = \"none\"`): an ion off every lattice site "
            "is in transit" if not s.voids else "lattice sites and the largest voids (`interstitials = \"auto\"`)"
            if s.interstitials == "auto" else f"lattice sites and {len(s.interstitials)} given interstitial "
            "position(s) of the unit cell")
    if s.lattice is not None:
        what += f"; lattice sites from {Path(s.lattice).name}"
    parts = []
    for model, by_T in transit_fractions(analysis.report).items():
        if by_T:
            vals = [100 * v for v in by_T.values()]
            temps = [float(t) for t in by_T]
            parts.append(f"{model} {min(vals):.1f}-{max(vals):.1f}% ({min(temps):g}-{max(temps):g} K)")
    return f"- Sites: {what}; ion-frames in transit: " + ("; ".join(parts) if parts else "–")


def _with_flags(text: str, flags: list[str] | None) -> str:
    """``text`` with the names of its flags, so that no flagged number reads as a result."""
    return f"{text} (flagged: {', '.join(flags)})" if flags and text != "–" else text


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
            d300 = _with_flags(f"{fit['D300K_cm2_s']:.2e}" + (f" [{lo:.1e}, {hi:.1e}]"
                                                              if lo is not None and hi is not None else ""),
                               fit.get("flags"))
        jumps = "; ".join(f"{k}: " + _with_flags(_pm(f), f.get("flags"))
                          for k, f in (m.get("defect_jump_arrhenius") or {}).items()) or "–"
        nebs = []
        for c in columns:
            n = (m.get("neb") or {}).get(c)
            if n is None:
                nebs.append("not computed")
            elif n["barrier_eV"] is None:
                nebs.append("no barrier (see flags)")
            else:
                nebs.append(_with_flags(f"{n['barrier_eV']:.3f}", n["flags"]))
        cost = m.get("us_per_atom_step")
        name = m["title"] + (f" ({Path(m['file']).name})" if m.get("file") else "")
        ea_d = _with_flags(_pm(fit), fit.get("flags")) if fit else "–"
        rows.append([name, training_text(m.get("training")), ea_d, jumps, d300, *nebs,
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
    write_json_atomic(json_path, study)
    return StudyOutcome(out=out, report_md=md_path, report_html=html_path, study_json=json_path,
                        flags=flags)
