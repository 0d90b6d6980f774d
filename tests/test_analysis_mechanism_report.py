"""Report of a vacancy sweep: hop classes with rates and an Arrhenius fit per class, no interstitial rows.

A kinetic Monte Carlo vacancy walks through an alpha-Li3N-like cell with two
known barriers: in-plane Li(2)-Li(2) hops (E_IN) and interlayer Li(1)-Li(2) hops
(E_OUT), rate nu exp(-E / k_B T) per neighbour pair. With equal site energies the
vacancy visits every site equally often, so the in-plane class rate per vacancy is
(2/3) x 3 Gamma_in = 2 Gamma_in and the interlayer one (2/3) x 6 Gamma_out +
(1/3) x 12 Gamma_out = 8 Gamma_out: both Arrhenius with the planted barriers.
"""

from __future__ import annotations

import argparse
import json

import ase.io
import numpy as np
from test_analysis_sites import li3n_with_vacancy

from ionmd.analysis.cli import register
from ionmd.analysis.mechanism import SiteOptions
from ionmd.analysis.mechanism_report import sweep_mechanisms
from ionmd.analysis.synthetic import write_lammps_dump

KB = 8.617333262e-5
E_IN, E_OUT, NU = 0.30, 0.45, 10.0  # eV, eV, 1/ps


def _kmc_positions(sc, vac: np.ndarray, T_K: float, n_frames: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, float]:
    """Unwrapped positions (n_frames, n_atoms, 3) of a KMC walk of the vacancy at ``vac`` and the frame interval."""
    cell = np.asarray(sc.cell[:])
    is_li = np.array([s == "Li" for s in sc.get_chemical_symbols()])
    li_sites = sc.get_scaled_positions()[is_li]
    g_in, g_out = NU * np.exp(-E_IN / (KB * T_K)), NU * np.exp(-E_OUT / (KB * T_K))
    dt_ps = 0.04 / (2 * g_in + 8 * g_out)  # about one hop per 25 frames at every temperature
    rest = sc.positions.copy()
    li = np.flatnonzero(is_li)
    pos = np.empty((n_frames, len(sc), 3))
    frame, t_next = 0, 0.0
    while frame < n_frames:
        d = vac - li_sites
        d -= np.round(d)
        dc = d @ cell  # ion -> vacancy vectors
        dist = np.linalg.norm(dc, axis=1)
        inplane = np.abs(dist - 2.107) < 0.05
        inter = np.abs(dist - 2.862) < 0.05
        rates = np.where(inplane, g_in, 0.0) + np.where(inter, g_out, 0.0)
        t_next += rng.exponential(1.0 / rates.sum())
        last = min(n_frames, int(np.ceil(t_next / dt_ps)))
        pos[frame:last] = rest
        frame = last
        k = rng.choice(len(li), p=rates / rates.sum())
        rest[li[k]] += dc[k]
        vac, li_sites[k] = li_sites[k].copy(), np.mod(li_sites[k] + np.linalg.solve(cell.T, dc[k]), 1.0)
    return pos + rng.normal(0, 0.1, pos.shape), dt_ps


def _vacancy_sweep(root, temps=(500.0, 650.0, 800.0, 1000.0), n_frames=1200):
    rng = np.random.default_rng(11)
    sc, vac = li3n_with_vacancy()
    root.mkdir()
    ase.io.write(root / "li3n.data", sc, format="lammps-data", specorder=["Li", "N"], masses=True)
    cell = np.asarray(sc.cell[:])
    types = np.array([1 if s == "Li" else 2 for s in sc.get_chemical_symbols()])
    runs = []
    for T in temps:
        pos, dt_ps = _kmc_positions(sc, vac, T, n_frames, rng)
        rdir = root / f"{T:g}K"
        rdir.mkdir()
        write_lammps_dump(rdir / "dump.lammpstrj", pos, cell, types, None, mode="image",
                          timesteps=np.arange(n_frames) * 10)
        runs.append({"id": f"kmc/{T:g}K", "model": "kmc", "T_K": T, "seed": 1, "status": "done",
                     "dump": f"{T:g}K/dump.lammpstrj", "data_file": "li3n.data", "dt_fs": dt_ps * 1e3 / 10,
                     "species": ["Li"], "type_map": {"1": "Li", "2": "N"}, "error": None})
    (root / "sweep.json").write_text(json.dumps({"name": "li3n-kmc", "runs": runs}))
    return root


def test_vacancy_report_has_class_rates_and_fits_and_no_interstitial_rows(tmp_path):
    sweep = _vacancy_sweep(tmp_path / "sw")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(sweep), "--interstitials", "", "--min-residence-ps", "0"])
    assert args.func(args) == 0
    rep = json.loads((sweep / "report.json").read_text())["mechanisms"]["kmc"]
    fits = rep["hop_class_arrhenius"]
    assert len(fits) == 2, list(fits)
    inplane = next(f for k, f in fits.items() if k.startswith("Li(2)-Li(2)") and "in-plane" in k)
    inter = next(f for k, f in fits.items() if k.startswith("Li(1)-Li(2)"))
    for f, E in ((inplane, E_IN), (inter, E_OUT)):
        assert f["Ea_ci95_eV"][0] < E < f["Ea_ci95_eV"][1], (f["label"], f["Ea_eV"], f["Ea_ci95_eV"])
    assert set(rep["defect_jump_arrhenius"]) == {"vacancy"} and rep["interstitial_jump_arrhenius"] is None
    for r in rep["by_T"].values():
        assert r["n_vacancies"] == 1 and r["n_interstitial_sites"] == 0
        assert r["counts"]["frenkel_formation"] == r["counts"]["recombination"] == 0
        assert {h["basis"] for h in r["hop_classes"]} == {"per vacancy"}
    md = (sweep / "report.md").read_text()
    assert "vacancy jumps (all mechanisms)" in md and "class Li(2)-Li(2) 2.11 Å in-plane" in md
    fit_table = md.split("| jump rate of")[1].split("\n\n")[0]
    assert "interstitial" not in fit_table and "frenkel" not in fit_table
    # without --interstitials '' the voids are interstitial sites, and no ion stops on one
    mech, _ = sweep_mechanisms(sweep, None, None, SiteOptions(min_residence_ps=0.0))
    for r in mech["kmc"].values():
        assert r.n_interstitial_sites > 0 and r.counts["frenkel_formation"] == 0
        assert {h.hop_class.label for h in r.hop_classes} <= set(fits)
