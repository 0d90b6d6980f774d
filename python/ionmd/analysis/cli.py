"""Command-line entry points of :mod:`ionmd.analysis`: diffusion, arrhenius, mechanism, report."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from ionmd.errors import InputError


def _parse_charges(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    out = {}
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        sym, sep, val = item.partition("=")
        try:
            out[sym.strip()] = float(val)
            if not np.isfinite(out[sym.strip()]):
                raise ValueError
        except ValueError:
            raise InputError(f"charge entry '{item}' is not of the form <symbol>=<charge>, e.g. Li=1") from None
        if not sep:
            raise InputError(f"charge entry '{item}' is not of the form <symbol>=<charge>, e.g. Li=1")
    return out


def _selection(args: argparse.Namespace):
    from ionmd.analysis.trajectory import Selection
    from ionmd.lammpsio.datafile import parse_type_map, read_type_map

    type_map: dict[int, str] = {}
    if getattr(args, "data", None):
        type_map = read_type_map(args.data)
    if getattr(args, "type_map", None):
        type_map = parse_type_map(args.type_map)
    species = [s for s in re.split(r"[,\s]+", args.species or "") if s]
    types = []
    for t in re.split(r"[,\s]+", args.types or ""):
        if t:
            if not t.isdigit():
                raise InputError(f"--types entry '{t}' is not an integer atom type")
            types.append(int(t))
    return Selection(species=species, types=types, type_map=type_map)


def _add_reading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--species", help="mobile species by symbol, e.g. Li (comma-separated for several)")
    p.add_argument("--types", help="mobile species by LAMMPS type, e.g. 1")
    p.add_argument("--data", help="LAMMPS data file of the system: its type map names the types "
                   "(type_map: 1=Li 2=F), and its atoms give the framework drift when the dump holds "
                   "only the mobile ions")
    p.add_argument("--type-map", help="type map, e.g. 1=Li,2=F")
    p.add_argument("--dt-fs", type=float,
                   help="MD timestep in fs, for files with a timestep column (LAMMPS dumps, extxyz with "
                   "'timestep'): time between frames = timestep difference x dt")
    p.add_argument("--frame-interval-fs", type=float,
                   help="time between consecutive frames of the file, fs (any format; instead of --dt-fs)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame (default 1)")
    p.add_argument("--no-drift-correction", action="store_true",
                   help="do not subtract the drift of the framework's centre of mass")


def _window_kw(args: argparse.Namespace) -> dict:
    return {"min_start_frac": args.min_start_frac, "end_frac": args.end_frac}


def _add_window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-start-frac", type=float, default=0.05,
                   help="earliest start of the fit window as a fraction of the run (default 0.05)")
    p.add_argument("--end-frac", type=float, default=0.5,
                   help="end of the fit window as a fraction of the run (default 0.5)")


def _check_temperature(T_K: float | None) -> None:
    import math

    if T_K is not None and (not math.isfinite(T_K) or T_K <= 0):
        raise InputError(f"--temperature-K {T_K} is not a positive finite temperature")


def run_diffusion(args: argparse.Namespace) -> int:
    from ionmd.analysis.diffusion import (
        add_conductivity,
        check_fractions,
        combine_runs,
        diffusion_from_trajectory,
        window_from_ps,
    )
    from ionmd.analysis.trajectory import check_time_options, load_trajectory
    from ionmd.lammpsio.datafile import read_data_file

    check_time_options(args.dt_fs, args.frame_interval_fs, args.stride)
    check_fractions(args.min_start_frac, args.end_frac)
    _check_temperature(args.temperature_K)
    sel = _selection(args)
    charges = _parse_charges(args.charges)
    system = read_data_file(args.data, type_map=sel.type_map or None).symbols if args.data else None
    results, curves = [], []
    for dump in args.dumps:
        traj = load_trajectory(dump, sel, args.dt_fs, drift_correction=not args.no_drift_correction,
                               system_symbols=system, frame_interval_fs=args.frame_interval_fs,
                               stride=args.stride)
        window = None
        if args.fit_window_ps:
            window = window_from_ps(*args.fit_window_ps, traj.dt_ps, traj.n_frames)
        res, msd = diffusion_from_trajectory(traj, sel.label(), window=window, **_window_kw(args))
        if args.temperature_K:
            res.T_K = args.temperature_K
        if charges:
            add_conductivity(res, traj, charges, args.temperature_K)
        results.append(res)
        curves.append((msd, res))
    res = combine_runs(results)
    if args.plot:
        from ionmd.analysis.plots import plot_msd

        plot_msd(curves, args.plot)
    if args.json:
        res.to_json(args.json)
    print(format_diffusion(res))
    return 0


def _interval(ci) -> str:
    lo, hi = (("unbounded" if v is None else f"{v:.4g}") for v in ci)
    return f"{lo} .. {hi}"


def format_diffusion(res) -> str:
    """Human-readable lines for a :class:`DiffusionResult`: D, per-axis D, sigma, Haven ratio, flags.

    A quantity whose 95% interval reaches 0 is printed as "not resolved" with its upper bound,
    never as a bare negative number.
    """
    if res.resolved:
        head = (f"D = {res.D_cm2_s:.4g} ± {res.D_err_cm2_s:.2g} cm^2/s "
                f"(95% CI {_interval(res.D_ci95_cm2_s)})")
    else:
        head = (f"D not resolved: D < {res.D_ci95_cm2_s[1]:.3g} cm^2/s (95% upper bound; "
                f"estimate {res.D_cm2_s:.3g} ± {res.D_err_cm2_s:.2g})")
    lines = [
        f"species {res.species}: {head}, {res.n_runs} run(s), {res.n_ions} ions, {res.n_frames} frames",
        f"  fit window {res.fit_window_ps[0]:.4g}-{res.fit_window_ps[1]:.4g} ps, "
        f"log-log slope {res.loglog_slope:.2f}" + ("" if res.diffusive else "  WARNING: not diffusive"),
    ]
    if res.D_axis_cm2_s:
        parts = []
        for k, ax in enumerate("xyz"):
            ci = res.D_axis_ci95_cm2_s[k] if len(res.D_axis_ci95_cm2_s) > k else None
            if ci and ci[0] == 0.0:
                parts.append(f"{ax} < {ci[1]:.3g} (not resolved)")
            elif ci:
                parts.append(f"{ax} {res.D_axis_cm2_s[k]:.3g} ({_interval(ci)})")
            else:
                parts.append(f"{ax} {res.D_axis_cm2_s[k]:.3g}")
        lines.append("  per axis D, cm^2/s (95% CI): " + ", ".join(parts))
    if res.sigma_mS_cm is not None:
        ci = res.sigma_ci95_mS_cm
        if ci and ci[0] == 0.0:
            sig = f"sigma not resolved: sigma < {ci[1]:.3g} mS/cm (95% upper bound)"
        else:
            sig = (f"sigma = {res.sigma_mS_cm:.4g} ± {res.sigma_err_mS_cm:.2g} mS/cm"
                   + (f" (95% CI {_interval(ci)})" if ci else ""))
        if res.haven_ratio is not None:
            hv = f"Haven ratio {res.haven_ratio:.3g}"
            if res.haven_ratio_ci95:
                hv += f" (95% CI {_interval(res.haven_ratio_ci95)})"
        else:
            hv = f"Haven ratio not given: {res.haven_ratio_reason}"
        if res.resolved or not res.D_cm2_s or res.sigma_NE_mS_cm is None:
            ne = f"Nernst-Einstein {res.sigma_NE_mS_cm:.4g} mS/cm"
        else:  # proportional to D: as unresolved as D
            ne_up = res.sigma_NE_mS_cm / res.D_cm2_s * res.D_ci95_cm2_s[1]
            ne = f"Nernst-Einstein < {ne_up:.3g} mS/cm (D not resolved)"
        lines.append(f"  {sig}, {ne}, {hv}")
    if res.flags:
        lines.append("  flags: " + ", ".join(res.flags))
    return "\n".join(lines)


def run_arrhenius(args: argparse.Namespace) -> int:
    from ionmd.analysis.arrhenius import fit_arrhenius, read_arrhenius_csv

    src = Path(args.source)
    species = [s for s in re.split(r"[,\s]+", args.species or "") if s] or None
    if src.is_dir():
        from ionmd.analysis.sweep import analyse_sweep

        sw = analyse_sweep(src, species=species)
        fits = list(sw.arrhenius.values())
        if not fits:
            raise InputError(f"sweep '{src}' has fewer than two analysed temperatures for every model")
    else:
        if not src.exists():
            raise InputError(f"'{src}' is neither a sweep directory nor a CSV file")
        T, D, E = read_arrhenius_csv(src)
        fits = [fit_arrhenius(T, D, E, label=src.stem)]
    if args.plot:
        from ionmd.analysis.plots import plot_arrhenius

        plot_arrhenius(fits, args.plot)
    if args.json:
        payload = fits[0].to_dict() if len(fits) == 1 else {f.label: f.to_dict() for f in fits}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    for f in fits:
        print(f"{f.label}: Ea = {f.Ea_eV:.4f} eV (95% CI {f.Ea_ci95_eV[0]:.4f} .. {f.Ea_ci95_eV[1]:.4f}), "
              f"D0 = {f.D0_cm2_s:.3g} cm^2/s, D(300 K) = {f.D300K_cm2_s:.3g} cm^2/s "
              f"(95% CI {f.D300K_ci95_cm2_s[0]:.3g} .. {f.D300K_ci95_cm2_s[1]:.3g}), "
              f"{f.n_temperatures} temperatures")
        if f.flags:
            extra = f" (flagged points at T = {f.flagged_points_K} K)" if f.flagged_points_K else ""
            print(f"  flags: {', '.join(f.flags)}{extra}")
    return 0


def run_mechanism(args: argparse.Namespace) -> int:
    from ionmd.analysis.mechanism import analyse_mechanisms
    from ionmd.analysis.mechanism_report import site_options_from_args

    sel = _selection(args)
    res = analyse_mechanisms(args.dump, args.reference, sel, args.dt_fs,
                             drift_correction=not args.no_drift_correction, options=site_options_from_args(args))
    if args.json:
        res.to_json(args.json)
    if args.plot:
        from ionmd.analysis.plots import plot_hops

        plot_hops({Path(args.dump).name: res.counts}, args.plot)
    print(res.summary())
    return 0


def run_report(args: argparse.Namespace) -> int:
    from ionmd.learn.state import is_learning_dir

    if is_learning_dir(args.sweep_dir):  # an `ionmd learn` directory
        from ionmd.learn.report import write_learn_report

        md, png = write_learn_report(args.sweep_dir)
        print(f"wrote {md} and {png}")
        return 0
    from ionmd.analysis.mechanism_report import site_options_from_args
    from ionmd.analysis.report import write_report

    species = [s for s in re.split(r"[,\s]+", args.species or "") if s] or None
    md, html = write_report(args.sweep_dir, species=species, charges=_parse_charges(args.charges),
                            reference=args.reference, neb=args.neb, site_options=site_options_from_args(args))
    print(f"wrote {md} and {html}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``ionmd`` parser."""
    from ionmd.analysis.mechanism_report import add_site_options

    p = subparsers.add_parser("diffusion", help="tracer D (and conductivity) from LAMMPS dumps",
                              description="Tracer diffusion coefficient with its uncertainty from one or "
                              "more dumps (independent runs at one temperature, combined).")
    p.add_argument("dumps", nargs="+", metavar="DUMP", help="LAMMPS dump (optionally .gz), extxyz or .traj")
    _add_reading_options(p)
    _add_window_options(p)
    p.add_argument("--fit-window-ps", nargs=2, type=float, metavar=("START", "END"),
                   help="fit D over this window (ps) instead of the automatic one")
    p.add_argument("--charges", help="charges per species for the conductivity, e.g. Li=1,F=-1")
    p.add_argument("--temperature-K", type=float, help="temperature, K (needed for the conductivity)")
    p.add_argument("--json", help="write the result as JSON to this file")
    p.add_argument("--plot", help="write the MSD plot (PNG) to this file")
    p.set_defaults(func=run_diffusion)

    p = subparsers.add_parser("arrhenius", help="activation energy from a sweep directory or CSV",
                              description="Weighted Arrhenius fit of D(T) with 95% intervals.")
    p.add_argument("source", metavar="SWEEP_DIR|CSV", help="sweep directory or CSV with T_K,D_cm2_s,D_err_cm2_s")
    p.add_argument("--species", help="override the species of the sweep's runs")
    p.add_argument("--json", help="write the result as JSON to this file")
    p.add_argument("--plot", help="write the Arrhenius plot (PNG) to this file")
    p.set_defaults(func=run_arrhenius)

    p = subparsers.add_parser("mechanism", help="hops between lattice/interstitial sites and their mechanisms",
                              description="Assign ions to sites of a reference structure and classify hops.")
    p.add_argument("dump", metavar="DUMP")
    p.add_argument("--reference", required=True, help="LAMMPS data file of the reference structure")
    _add_reading_options(p)
    add_site_options(p)
    p.add_argument("--json", help="write the result as JSON to this file")
    p.add_argument("--plot", help="write the hop-count plot (PNG) to this file")
    p.set_defaults(func=run_mechanism)

    p = subparsers.add_parser("report", help="Markdown + HTML report of a sweep directory",
                              description="Analyse a sweep and write report.md and report.html into it.")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.add_argument("--species", help="override the species of the sweep's runs")
    p.add_argument("--charges", help="charges per species for conductivities, e.g. Li=1,F=-1")
    p.add_argument("--reference", help="reference data file for the mechanism analysis "
                   "(default: each run's data_file)")
    p.add_argument("--neb", nargs="+", metavar="NEB_JSON", default=[],
                   help="NEB results (ionmd neb's neb.json) to show beside the Ea of the same model; "
                   "SWEEP_DIR/neb/*.json are found automatically")
    add_site_options(p)
    p.set_defaults(func=run_report)
