"""Mechanisms over a sweep: site options, seeds summed, jump-rate Arrhenius fits, the report section.

Nothing here knows a material: the fits shown follow the defects of the trajectory
(:func:`ionmd.analysis.mechanism.defect_counts`). A vacancy jump-rate fit appears when
lattice sites are vacant, an interstitial one when ions sit on interstitial sites; every hop class
seen at two or more temperatures gets its own fit. A fit whose temperatures carry
flags (few hops, many ion-frames in transit) is ``from-flagged-points``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ionmd.analysis.arrhenius import ArrheniusResult, fit_arrhenius
from ionmd.analysis.mechanism import (
    MECHANISMS,
    MechanismResult,
    SiteOptions,
    mechanisms_from_trajectory,
    merge_results,
)
from ionmd.analysis.sites import parse_fractional_sites
from ionmd.errors import InputError

INTERSTITIAL_HOPS = ("interstitialcy", "direct_interstitial")
"""The mechanisms that move an interstitial defect by one site."""

VACANCY_HOPS = ("vacancy",)
"""The mechanism that moves a vacancy by one site."""


def add_site_options(p: argparse.ArgumentParser) -> None:
    """The site options shared by ``ionmd mechanism`` and ``ionmd report``."""
    p.add_argument("--interstitials", help="fractional interstitial sites 'x,y,z;x,y,z;...' of the reference "
                   "cell; '' for none (default: the largest voids, found automatically)")
    p.add_argument("--perfect", help="perfect (defect-free) structure, any ASE-readable file or LAMMPS data "
                   "file, in the reference cell or a cell that tiles it: its mobile positions are the lattice "
                   "sites (default: reconstructed by symmetry from the reference)")
    p.add_argument("--min-residence-ps", type=float, default=0.1,
                   help="minimum time at a site to count as a visit (default 0.1 ps)")
    p.add_argument("--window-ps", type=float, default=0.5,
                   help="max time between the two hops of a knock-off event (default 0.5 ps)")
    p.add_argument("--assign-radius-A", type=float, default=None,
                   help="enter radius: an ion joins a site within this distance (default, per site: 0.4 x "
                   "the distance to its nearest other site)")
    p.add_argument("--leave-radius-A", type=float, default=None,
                   help="leave radius: an ion leaves its site beyond this distance or when nearer another "
                   "site (default, per site: 0.6 x the distance to its nearest other site)")
    p.add_argument("--symprec-A", type=float, default=0.1,
                   help="position tolerance of the symmetry search, Å (default 0.1)")


def site_options_from_args(args: argparse.Namespace) -> SiteOptions:
    """:class:`SiteOptions` from parsed :func:`add_site_options` arguments (``--interstitials ''``: none)."""
    for name in ("min_residence_ps", "window_ps", "assign_radius_A", "leave_radius_A", "symprec_A"):
        v = getattr(args, name, None)
        low_ok = name == "min_residence_ps"  # 0: every visit counts
        if v is not None and not (np.isfinite(v) and (v >= 0 if low_ok else v > 0)):
            raise InputError(f"--{name.replace('_', '-')} {v} must be a {'non-negative' if low_ok else 'positive'} "
                             "number")
    inter = getattr(args, "interstitials", None)
    return SiteOptions(interstitial_frac=None if inter is None else parse_fractional_sites(inter),
                       perfect=getattr(args, "perfect", None), min_residence_ps=args.min_residence_ps,
                       window_ps=args.window_ps, enter_radius_A=args.assign_radius_A,
                       leave_radius_A=args.leave_radius_A, symprec_A=args.symprec_A)


class MechanismCollector:
    """Mechanism analysis of each run of a sweep, fed the trajectories that the diffusion analysis loads.

    Pass it as ``on_run`` to :func:`ionmd.analysis.sweep.analyse_sweep` (each dump is read
    once), then take :meth:`results`. Runs without a reference data file, or whose sites
    cannot be found, are left out with a note.
    """

    def __init__(self, sweep_dir: str | Path, species: list[str] | None = None, reference: str | None = None,
                 options: SiteOptions | None = None) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.species = species
        self.reference = reference
        self.options = options or SiteOptions()
        self.notes: list[str] = []
        self._runs: dict[str, dict[float, list[MechanismResult]]] = {}
        self._sites: dict[tuple, object] = {}

    def reference_of(self, run: dict) -> Path | None:
        """The reference structure of a run (``--reference`` or its ``data_file``), None with a note if absent."""
        ref = self.reference or (self.sweep_dir / run["data_file"] if run.get("data_file") else None)
        if ref is None or not Path(ref).is_file():
            self.notes.append(f"{run.get('id')}: no reference data file for the mechanism analysis")
            return None
        return Path(ref)

    def __call__(self, run: dict, traj) -> None:
        from ionmd.analysis.sweep import _run_selection
        from ionmd.lammpsio.datafile import read_data_file

        ref_path = self.reference_of(run)
        if ref_path is None:
            return
        try:
            sel = _run_selection(run, self.sweep_dir / "sweep.json", self.species)
            key = (str(ref_path), tuple(sel.species))
            if key not in self._sites:
                sites = self.options.sites(read_data_file(ref_path, type_map=sel.type_map or None), sel.species)
                self._sites[key] = sites
                self.notes += [f"sites of {ref_path}: {n}" for n in sites.notes]
            o = self.options
            res = mechanisms_from_trajectory(traj, self._sites[key], sel.label(), o.min_residence_ps, o.window_ps,
                                             o.enter_radius_A, o.leave_radius_A)
        except InputError as exc:
            self.notes.append(f"{run.get('id')}: mechanism analysis skipped: {exc}")
            return
        res.T_K = float(run["T_K"])
        self._runs.setdefault(str(run["model"]), {}).setdefault(float(run["T_K"]), []).append(res)

    def results(self) -> tuple[dict[str, dict[float, MechanismResult]], list[str]]:
        """Results per (model, T), seeds summed (:func:`ionmd.analysis.mechanism.merge_results`), and the notes."""
        out: dict[str, dict[float, MechanismResult]] = {}
        for model, by_T in self._runs.items():
            out[model] = {}
            for T, items in sorted(by_T.items()):
                out[model][T] = merge_results(items)
                out[model][T].T_K = T
        return out, list(dict.fromkeys(self.notes))


def sweep_mechanisms(sweep_dir: Path, species: list[str] | None, reference: str | None,
                     options: SiteOptions | None = None
                     ) -> tuple[dict[str, dict[float, MechanismResult]], list[str]]:
    """Mechanism results per (model, T), seeds summed, reading each ``done`` run's dump (see
    :class:`MechanismCollector`; :func:`ionmd.analysis.report.write_report` shares the diffusion's load)."""
    from ionmd.analysis.sweep import _run_selection, read_sweep, system_symbols
    from ionmd.analysis.trajectory import load_trajectory

    sweep_dir = Path(sweep_dir)
    collect = MechanismCollector(sweep_dir, species, reference, options)
    for run in read_sweep(sweep_dir)["runs"]:
        if run.get("status") != "done" or collect.reference_of(run) is None:
            continue
        try:
            sel = _run_selection(run, sweep_dir / "sweep.json", species)
            traj = load_trajectory(sweep_dir / run["dump"], sel, float(run["dt_fs"]),
                                   system_symbols=system_symbols(sweep_dir, run, sel))
        except InputError as exc:
            collect.notes.append(f"{run.get('id')}: mechanism analysis skipped: {exc}")
            continue
        collect(run, traj)
    return collect.results()


def _rate_fit(points: list[tuple[float, int, float, list[str]]], label: str) -> ArrheniusResult | None:
    """Arrhenius fit of count / duration (1/ps, Poisson errors) over (T, count, duration, flags) points."""
    pts = [p for p in points if p[1] > 0 and p[2] > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    return fit_arrhenius([p[0] for p in pts], [p[1] / p[2] for p in pts], [np.sqrt(p[1]) / p[2] for p in pts],
                         label=label, quantity="rate_per_ps", point_flags=[p[3] for p in pts])


def defect_hop_arrhenius(by_T: dict[float, MechanismResult], label: str,
                         mechanisms: tuple[str, ...] = INTERSTITIAL_HOPS) -> ArrheniusResult | None:
    """Arrhenius fit of the defect's total jump rate (events per ps in the cell) over temperature.

    For a single point defect the tracer D is proportional to its jump rate, but the
    tracer MSD averages the few ions it moves with all the vibrating ones, so short
    runs give D with huge errors. The jump rate is counted directly: at each
    temperature the events of ``mechanisms`` are summed over seeds, the rate is
    count / duration (1/ps) and its error is Poisson, sqrt(count) / duration.
    Temperatures without an event are left out (ln 0 is undefined).

    Returns
    -------
    ArrheniusResult or None
        ``quantity`` is ``"rate_per_ps"`` (``D0_cm2_s`` and ``D300K_cm2_s`` hold the
        prefactor and the 300 K rate, in 1/ps); None if fewer than two temperatures
        have events.
    """
    pts = [(T, sum(r.counts.get(m, 0) for m in mechanisms), r.duration_ps, list(r.flags))
           for T, r in sorted(by_T.items())]
    return _rate_fit(pts, f"{label} {'+'.join(mechanisms)}")


def mechanism_arrhenius(by_T: dict[float, MechanismResult], label: str) -> dict[str, ArrheniusResult]:
    """Arrhenius fit of each mechanism's rate over the temperatures where it was seen."""
    fits = {m: defect_hop_arrhenius(by_T, label, (m,)) for m in MECHANISMS}
    return {m: f for m, f in fits.items() if f is not None}


def defect_jump_arrhenius(by_T: dict[float, MechanismResult], label: str) -> dict[str, ArrheniusResult]:
    """Jump-rate fits of the defects present in the reference: ``vacancy`` and/or ``interstitial``."""
    first = next(iter(by_T.values()), None)
    if first is None:
        return {}
    out = {}
    if first.n_vacancies > 0:
        out["vacancy"] = defect_hop_arrhenius(by_T, label, VACANCY_HOPS)
    if first.n_interstitial_ions > 0:
        out["interstitial"] = defect_hop_arrhenius(by_T, label, INTERSTITIAL_HOPS)
    return {k: f for k, f in out.items() if f is not None}


def hop_class_arrhenius(by_T: dict[float, MechanismResult], label: str) -> dict[str, ArrheniusResult]:
    """Arrhenius fit of each hop class's jump rate over the temperatures where it was seen."""
    labels = list(dict.fromkeys(h.hop_class.label for r in by_T.values() for h in r.hop_classes))
    out = {}
    for c in labels:
        pts = []
        for T, r in sorted(by_T.items()):
            h = next((x for x in r.hop_classes if x.hop_class.label == c), None)
            if h is not None:
                pts.append((T, h.count, r.duration_ps, list(h.flags) + list(r.flags)))
        f = _rate_fit(pts, f"{label} {c}")
        if f is not None:
            out[c] = f
    return out


def _class_list(by_T: dict[float, MechanismResult]) -> list[dict]:
    """Every hop class seen (its :class:`HopClass` fields, ``count`` over all temperatures and
    ``count_by_T``), most frequent first: the input of the NEB of hop classes."""
    out: dict[str, dict] = {}
    for T, r in sorted(by_T.items()):
        for h in r.hop_classes:
            d = out.setdefault(h.hop_class.label, h.hop_class.to_dict() | {"count": 0, "count_by_T": {}})
            d["count"] += h.count
            d["count_by_T"][str(T)] = h.count
    return sorted(out.values(), key=lambda d: -d["count"])


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def _fit_rows(fits: dict[str, ArrheniusResult]) -> list[str]:
    return [f"| {k} | {f.Ea_eV:.3f} | {f.Ea_ci95_eV[0]:.3f} – {f.Ea_ci95_eV[1]:.3f} | {f.n_temperatures} | "
            f"{', '.join(f.flags) or '–'} |" for k, f in fits.items()]


def mechanism_section(mech: dict[str, dict[float, MechanismResult]], sweep_dir: Path, figdir: Path
                      ) -> tuple[list[str], dict]:
    """Markdown lines and the ``report.json`` ``mechanisms`` entry for the mechanism results of a sweep."""
    from ionmd.analysis.plots import plot_hops

    md: list[str] = []
    js: dict = {}
    if not mech:
        return md, js
    md += ["## Hop mechanisms", "",
           "Ions are assigned to sites with hysteresis (docs/analysis.md); hops are grouped into symmetry-distinct "
           "classes. Rates are per carrier (per vacancy, per interstitial or per ion, as stated) with exact 95% "
           "Poisson intervals; seeds summed.", ""]
    for m, by_T in mech.items():
        first = next(iter(by_T.values()))
        subs = ", ".join(f"{s['label']} ({s['wyckoff']}, {s['n_sites']} sites, {s['n_occupied']} occupied)"
                         for s in first.sublattices)
        md += [f"### {m}", "", f"Sites: {subs}; {first.n_vacancies} vacancy(ies), "
               f"{first.n_interstitial_ions} interstitial ion(s) in the MD.", ""]
        shown = [k for k in MECHANISMS if any(r.counts.get(k, 0) for r in by_T.values())
                 or (k in VACANCY_HOPS and first.n_vacancies) or (k in INTERSTITIAL_HOPS and first.n_interstitial_ions)]
        md += ["| T (K) | in transit | " + " | ".join(shown) + " | flags |", "|---|---|" + "---|" * (len(shown) + 1)]
        for T, r in sorted(by_T.items()):
            md.append(f"| {T:g} | {100 * r.transit_fraction:.1f}% | " + " | ".join(
                f"{r.counts[k]} ({_fmt(r.rates_per_ps[k])}/ps)" for k in shown) + f" | {', '.join(r.flags) or '–'} |")
        md += ["", "| T (K) | hop class | hops | rate (1/ps) | 95% CI | basis | flags |",
               "|---|---|---|---|---|---|---|"]
        for T, r in sorted(by_T.items()):
            for h in r.hop_classes:
                lo, hi = h.rate_ci95_per_ps or (float("nan"), float("nan"))
                md.append(f"| {T:g} | {h.hop_class.label} | {h.count} | {_fmt(h.rate_per_ps)} | {_fmt(lo)} – "
                          f"{_fmt(hi)} | {h.basis} ({h.n_carriers}) | {', '.join(h.flags) or '–'} |")
        p = plot_hops({f"{T:g} K": {k: r.counts[k] for k in shown} for T, r in sorted(by_T.items())},
                      figdir / f"hops_{m.replace('/', '_')}.png", title=f"Hops per mechanism, {m}")
        md += ["", f"![hops {m}]({p.relative_to(sweep_dir)})", ""]
        fits = {k: f for k, f in mechanism_arrhenius(by_T, m).items() if k in shown}
        defects = defect_jump_arrhenius(by_T, m)
        classes = hop_class_arrhenius(by_T, m)
        same = {"vacancy"} if "vacancy" in defects else set()  # the vacancy's jumps are its one mechanism
        rows = ({f"{k} jumps (all mechanisms)": f for k, f in defects.items()}
                | {f"mechanism {k}": f for k, f in fits.items() if k not in same}
                | {f"class {k}": f for k, f in classes.items()})
        if rows:
            md += ["| jump rate of | Ea (eV) | 95% CI (eV) | temperatures | flags |", "|---|---|---|---|---|"]
            md += _fit_rows(rows) + [""]
        js[m] = {"by_T": {str(T): r.to_dict() | {"events": len(r.events)} for T, r in by_T.items()},
                 "arrhenius": {k: f.to_dict() for k, f in fits.items()},
                 "defect_jump_arrhenius": {k: f.to_dict() for k, f in defects.items()},
                 "hop_class_arrhenius": {k: f.to_dict() for k, f in classes.items()},
                 "hop_classes": _class_list(by_T),
                 "interstitial_jump_arrhenius": defects["interstitial"].to_dict() if "interstitial" in defects
                 else None}
    return md, js
