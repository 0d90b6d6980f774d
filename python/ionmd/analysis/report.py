"""``ionmd report SWEEP_DIR``: analyse a sweep and write report.md, report.html and report.json."""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path

import numpy as np

from ionmd.analysis.mechanism import SiteOptions
from ionmd.analysis.mechanism_report import (  # noqa: F401  (re-exported: the report's mechanism API)
    INTERSTITIAL_HOPS,
    MechanismCollector,
    defect_hop_arrhenius,
    mechanism_arrhenius,
    mechanism_section,
    sweep_mechanisms,
)
from ionmd.analysis.plots import plot_arrhenius, plot_msd
from ionmd.analysis.sweep import SweepAnalysis, analyse_sweep
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


def write_report(sweep_dir: str | Path, species: list[str] | None = None,
                 charges: dict[str, float] | None = None, reference: str | None = None,
                 neb: list[str | Path] | None = None, site_options: SiteOptions | None = None
                 ) -> tuple[Path, Path]:
    """Analyse a sweep and write ``report.md``, ``report.html``, ``report.json`` and PNGs into it.

    NEB results (``<sweep_dir>/neb/*.json`` and the ``neb`` files) are matched to the sweep's
    models and shown beside their Arrhenius Ea (:mod:`ionmd.neb.sweep_match`).
    Returns the paths of the Markdown and HTML files.
    """
    sweep_dir = Path(sweep_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect = MechanismCollector(sweep_dir, species, reference, site_options)
        sw: SweepAnalysis = analyse_sweep(sweep_dir, species=species, charges=charges or None, on_run=collect)
        mech, notes = collect.results()  # each dump read once, for D and mechanisms
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
    mech_md, mech_json = mechanism_section(mech, sweep_dir, figdir)
    md += mech_md
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
