"""``ionmd report SWEEP_DIR``: analyse a sweep and write report.md, report.html and report.json."""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path

import numpy as np

from ionmd.analysis.arrhenius import ArrheniusResult, fit_arrhenius
from ionmd.analysis.datafile import read_data_file
from ionmd.analysis.mechanism import MECHANISMS, MechanismResult, mechanisms_from_trajectory
from ionmd.analysis.plots import plot_arrhenius, plot_hops, plot_msd
from ionmd.analysis.sites import find_sites
from ionmd.analysis.sweep import SweepAnalysis, _run_selection, analyse_sweep, read_sweep
from ionmd.analysis.trajectory import load_trajectory
from ionmd.errors import InputError
from ionmd.neb.sweep_match import (
    MatchedNEB,
    barrier_text,
    find_neb_results,
    match_results,
    neb_markdown,
    sweep_models,
)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def sweep_mechanisms(sweep_dir: Path, species: list[str] | None, reference: str | None
                     ) -> tuple[dict[str, dict[float, MechanismResult]], list[str]]:
    """Mechanism counts per (model, T), summed over seeds; runs without a reference are skipped."""
    data = read_sweep(sweep_dir)
    out: dict[str, dict[float, MechanismResult]] = {}
    notes: list[str] = []
    site_cache: dict[tuple, object] = {}
    for run in data["runs"]:
        if run.get("status") != "done":
            continue
        ref_path = reference or (sweep_dir / run["data_file"] if run.get("data_file") else None)
        if ref_path is None or not Path(ref_path).is_file():
            notes.append(f"{run.get('id')}: no reference data file for the mechanism analysis")
            continue
        try:
            sel = _run_selection(run, sweep_dir / "sweep.json", species)
            key = (str(ref_path), tuple(sel.species))
            if key not in site_cache:
                ref = read_data_file(ref_path, type_map=sel.type_map or None)
                site_cache[key] = (find_sites(ref, sel.species), ref.symbols)
            sites, symbols = site_cache[key]
            traj = load_trajectory(sweep_dir / run["dump"], sel, float(run["dt_fs"]), system_symbols=symbols)
            res = mechanisms_from_trajectory(traj, sites, sel.label())
        except InputError as exc:
            notes.append(f"{run.get('id')}: mechanism analysis skipped: {exc}")
            continue
        res.T_K = float(run["T_K"])
        by_T = out.setdefault(str(run["model"]), {})
        T = float(run["T_K"])
        if T in by_T:  # sum seeds: counts and durations add
            acc = by_T[T]
            acc.duration_ps += res.duration_ps
            acc.n_hops += res.n_hops
            for m in MECHANISMS:
                acc.counts[m] += res.counts[m]
            acc.events.extend(res.events)
            acc.source += f", {res.source}"
        else:
            by_T[T] = res
    for by_T in out.values():
        for r in by_T.values():
            r.rates_per_ps = {m: r.counts[m] / r.duration_ps for m in MECHANISMS}
            r.rates_err_per_ps = {m: max(np.sqrt(r.counts[m]), 1.0) / r.duration_ps for m in MECHANISMS}
    return out, notes


def mechanism_arrhenius(by_T: dict[float, MechanismResult], label: str) -> dict[str, ArrheniusResult]:
    """Arrhenius fit of each mechanism's rate over the temperatures where it was seen."""
    fits = {m: defect_hop_arrhenius(by_T, label, (m,)) for m in MECHANISMS}
    return {m: f for m, f in fits.items() if f is not None}


INTERSTITIAL_HOPS = ("interstitialcy", "direct_interstitial")
"""The mechanisms that move an interstitial defect by one site."""


def defect_hop_arrhenius(by_T: dict[float, MechanismResult], label: str,
                         mechanisms: tuple[str, ...] = INTERSTITIAL_HOPS) -> ArrheniusResult | None:
    """Arrhenius fit of the defect's total jump rate (events per ps) over temperature.

    With one mechanism it is that mechanism's rate (:func:`mechanism_arrhenius`).

    For a single point defect the tracer D is proportional to its jump rate, but the
    tracer MSD averages the few ions it moves with all the vibrating ones, so short
    runs give D with huge errors. The jump rate is counted directly: at each
    temperature the events of ``mechanisms`` are summed over seeds, the rate is
    count / duration (1/ps) and its error is Poisson, sqrt(count) / duration (a
    relative error of 1/sqrt(count) in ln rate). Temperatures without an event are
    left out (ln 0 is undefined).

    Returns
    -------
    ArrheniusResult or None
        ``quantity`` is ``"rate_per_ps"`` (``D0_cm2_s`` and ``D300K_cm2_s`` hold the
        prefactor and the 300 K rate, in 1/ps); None if fewer than two temperatures
        have events.
    """
    Ts, rates, errs = [], [], []
    for T in sorted(by_T):
        r = by_T[T]
        n = sum(r.counts.get(m, 0) for m in mechanisms)
        if n > 0 and r.duration_ps > 0:
            Ts.append(T)
            rates.append(n / r.duration_ps)
            errs.append(np.sqrt(n) / r.duration_ps)
    if len(set(Ts)) < 2:
        return None
    return fit_arrhenius(Ts, rates, errs, label=f"{label} {'+'.join(mechanisms)}",
                         quantity="rate_per_ps")


def write_report(sweep_dir: str | Path, species: list[str] | None = None,
                 charges: dict[str, float] | None = None, reference: str | None = None,
                 neb: list[str | Path] | None = None) -> tuple[Path, Path]:
    """Analyse a sweep and write ``report.md``, ``report.html``, ``report.json`` and PNGs into it.

    NEB results (``<sweep_dir>/neb/*.json`` and the ``neb`` files) are matched to the sweep's
    models and shown beside their Arrhenius Ea (:mod:`ionmd.neb.sweep_match`).
    Returns the paths of the Markdown and HTML files.
    """
    sweep_dir = Path(sweep_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw: SweepAnalysis = analyse_sweep(sweep_dir, species=species, charges=charges or None)
        mech, notes = sweep_mechanisms(sweep_dir, species, reference)
    notes = [str(w.message) for w in caught] + notes
    nebs, neb_notes = _neb_barriers(sweep_dir, neb)
    notes += neb_notes
    figdir = sweep_dir / "report_files"
    figdir.mkdir(exist_ok=True)
    md: list[str] = [f"# ionmd report: {sw.name}", ""]
    md += ["Diffusion coefficients from the all-origin tracer MSD, fitted by generalised least squares "
           "with a modelled covariance (docs/analysis.md); seeds combined per temperature. Intervals are 95%.", ""]
    if sw.arrhenius:
        p = plot_arrhenius(list(sw.arrhenius.values()), figdir / "arrhenius.png")
        md += ["## Activation energies", "", "| model | Ea (eV) | Ea 95% CI (eV) | D0 (cm²/s) | D(300 K) (cm²/s) "
               "| D(300 K) 95% CI | temperatures | flags |" + (" NEB barriers |" if nebs else ""),
               "|---|---|---|---|---|---|---|---|" + ("---|" if nebs else "")]
        for m, f in sw.arrhenius.items():
            md.append(f"| {m} | {f.Ea_eV:.3f} | {f.Ea_ci95_eV[0]:.3f} – {f.Ea_ci95_eV[1]:.3f} | "
                      f"{_fmt(f.D0_cm2_s)} | {_fmt(f.D300K_cm2_s)} | {_fmt(f.D300K_ci95_cm2_s[0])} – "
                      f"{_fmt(f.D300K_ci95_cm2_s[1])} | {f.n_temperatures} | {', '.join(f.flags) or '–'} |"
                      + (f" {_neb_cell(nebs, m)} |" if nebs else ""))
        md += ["", f"![Arrhenius plot]({p.relative_to(sweep_dir)})", ""]
    md += neb_markdown(nebs, {m: f.Ea_eV for m, f in sw.arrhenius.items()})
    md += ["## Diffusion coefficients", "", "| model | T (K) | D (cm²/s) | ± 1σ | 95% CI | runs | ions "
           "| fit window (ps) | σ (mS/cm) | Haven ratio | flags |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, by_T in sw.diffusion.items():
        for T, r in sorted(by_T.items()):
            lo, hi = r.D_ci95_cm2_s
            d_txt = _fmt(r.D_cm2_s) if r.resolved else f"< {_fmt(hi)} (not resolved)"
            md.append(f"| {m} | {T:g} | {d_txt} | {_fmt(r.D_err_cm2_s, 2)} | {_fmt(lo)} – "
                      f"{_fmt(hi)} | {r.n_runs} | {r.n_ions} | {r.fit_window_ps[0]:.3g} – "
                      f"{r.fit_window_ps[1]:.3g}{'' if r.diffusive else ' (not diffusive)'} | "
                      f"{_fmt(r.sigma_mS_cm)} | {_fmt(r.haven_ratio)} | {', '.join(r.flags) or '–'} |")
    md.append("")
    for m, by_T in sw.msd.items():
        for T, items in sorted(by_T.items()):
            p = plot_msd(items, figdir / f"msd_{m.replace('/', '_')}_{T:g}K.png", title=f"{m}, {T:g} K")
            md += [f"![MSD {m} {T:g} K]({p.relative_to(sweep_dir)})", ""]
    mech_json = {}
    if mech:
        md += ["## Hop mechanisms", "", "Events per mechanism (seeds summed) and rates per ps (± Poisson).", "",
               "| model | T (K) | " + " | ".join(MECHANISMS) + " |", "|---|---|" + "---|" * len(MECHANISMS)]
        for m, by_T in mech.items():
            for T, r in sorted(by_T.items()):
                md.append(f"| {m} | {T:g} | " + " | ".join(
                    f"{r.counts[k]} ({_fmt(r.rates_per_ps[k])}/ps)" for k in MECHANISMS) + " |")
            p = plot_hops({f"{T:g} K": r.counts for T, r in sorted(by_T.items())},
                          figdir / f"hops_{m.replace('/', '_')}.png", title=f"Hops per mechanism, {m}")
            md += ["", f"![hops {m}]({p.relative_to(sweep_dir)})", ""]
            fits = mechanism_arrhenius(by_T, m)
            jumps = defect_hop_arrhenius(by_T, m)
            mech_json[m] = {"by_T": {str(T): r.to_dict() | {"events": len(r.events)} for T, r in by_T.items()},
                            "arrhenius": {k: f.to_dict() for k, f in fits.items()},
                            "interstitial_jump_arrhenius": jumps.to_dict() if jumps else None}
            if jumps is not None:  # the interstitial moves by both mechanisms: one rate, one Ea
                fits = fits | {"interstitial jumps (" + " + ".join(INTERSTITIAL_HOPS) + ")": jumps}
            if fits:
                md += ["| mechanism | Ea (eV) | 95% CI (eV) |", "|---|---|---|"]
                md += [f"| {k} | {f.Ea_eV:.3f} | {f.Ea_ci95_eV[0]:.3f} – {f.Ea_ci95_eV[1]:.3f} |"
                       for k, f in fits.items()]
                md.append("")
    if notes or sw.skipped:
        md += ["## Notes", ""] + [f"- {n}" for n in dict.fromkeys(sw.skipped + notes)] + [""]
    md_path = sweep_dir / "report.md"
    md_path.write_text("\n".join(md) + "\n")
    html_path = sweep_dir / "report.html"
    html_path.write_text(markdown_to_html("\n".join(md), title=f"ionmd report: {sw.name}"))
    (sweep_dir / "report.json").write_text(json.dumps(sw.to_dict() | {"mechanisms": mech_json,
                                                                       "neb": [x.to_dict() for x in nebs]}, indent=2) + "\n")
    return md_path, html_path


def _neb_barriers(sweep_dir: Path, extra: list[str | Path] | None) -> tuple[list[MatchedNEB], list[str]]:
    """NEB results of the sweep (``neb/*.json``) and ``extra`` files, matched to its models."""
    found, notes = find_neb_results(sweep_dir, extra)
    matched = match_results(found, sweep_models(sweep_dir)) if found else []
    notes += [f"NEB result {x.source} ({x.result.model}) matches no model of this sweep"
              for x in matched if x.model is None]
    return matched, notes


def _neb_cell(nebs: list[MatchedNEB], model: str) -> str:
    """The Ea table's NEB column for one model: every matching barrier, or a dash."""
    return "; ".join(barrier_text(x.result) for x in nebs if x.model == model) or "—"


def markdown_to_html(text: str, title: str) -> str:
    """Render the small Markdown subset used by the report (headings, tables, images, lists, text)."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:2px 6px}img{max-width:100%}</style></head><body>"]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>")
            for r in rows[2:]:
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
            out.append("</table>")
            continue
        elif line.startswith("!["):
            alt, _, rest = line[2:].partition("](")
            out.append(f"<p><img alt='{html.escape(alt)}' src='{html.escape(rest.rstrip(')'))}'></p>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    out.append("</body></html>")
    return "\n".join(out) + "\n"
