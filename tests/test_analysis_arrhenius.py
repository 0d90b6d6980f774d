"""Weighted Arrhenius fit: recovers a known Ea from noisy data, from a CSV and from a sweep directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_area_cli

from ionmd.analysis.arrhenius import KB_EV_K, fit_arrhenius, read_arrhenius_csv
from ionmd.analysis.cli import register
from ionmd.analysis.sweep import analyse_sweep
from ionmd.analysis.synthetic import brownian_walk, write_lammps_dump
from ionmd.errors import InputError

EA, D0 = 0.45, 2e-3  # eV, cm^2/s


def main(argv):
    """``ionmd`` with this area's sub-commands only."""
    return run_area_cli(register, argv)


def _data(rng, rel=0.08, T=(600.0, 700.0, 800.0, 900.0, 1000.0, 1200.0)):
    T = np.array(T)
    truth = D0 * np.exp(-EA / (KB_EV_K * T))
    D = truth * np.exp(rng.normal(0, rel, len(T)))
    return T, D, rel * D


def test_recovers_Ea_inside_interval_and_intervals_are_calibrated():
    rng = np.random.default_rng(1)
    T, D, E = _data(rng)
    fit = fit_arrhenius(T, D, E)
    assert fit.Ea_ci95_eV[0] < EA < fit.Ea_ci95_eV[1]
    assert fit.Ea_ci95_eV[1] - fit.Ea_ci95_eV[0] < 0.2
    assert fit.n_temperatures == 6
    d300 = D0 * np.exp(-EA / (KB_EV_K * 300.0))
    assert fit.D300K_ci95_cm2_s[0] < d300 < fit.D300K_ci95_cm2_s[1]
    hits_ea = hits_300 = 0
    for _ in range(200):
        f = fit_arrhenius(*_data(rng))
        hits_ea += f.Ea_ci95_eV[0] <= EA <= f.Ea_ci95_eV[1]
        hits_300 += f.D300K_ci95_cm2_s[0] <= d300 <= f.D300K_ci95_cm2_s[1]
    assert 180 <= hits_ea <= 199 and 180 <= hits_300 <= 199, (hits_ea, hits_300)


def test_underestimated_errors_are_inflated_by_scatter():
    rng = np.random.default_rng(2)
    T, D, E = _data(rng, rel=0.2)
    honest = fit_arrhenius(T, D, E)
    overconfident = fit_arrhenius(T, D, E / 10)
    assert overconfident.chi2_red > 10
    # the interval does not shrink tenfold when the stated errors do: the scatter sets it
    w_h = np.diff(honest.Ea_ci95_eV)[0]
    w_o = np.diff(overconfident.Ea_ci95_eV)[0]
    assert w_o > 0.3 * w_h


def test_csv_cli_json_and_plot(tmp_path, capsys):
    rng = np.random.default_rng(3)
    T, D, E = _data(rng)
    csv = tmp_path / "d.csv"
    csv.write_text("T_K,D_cm2_s,D_err_cm2_s\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(T, D, E, strict=True)))
    out, png = tmp_path / "a.json", tmp_path / "a.png"
    assert main(["arrhenius", str(csv), "--json", str(out), "--plot", str(png)]) == 0
    d = json.loads(out.read_text())
    for key in ("Ea_eV", "Ea_ci95_eV", "D0_cm2_s", "D300K_cm2_s", "D300K_ci95_cm2_s", "n_temperatures"):
        assert key in d
    assert d["Ea_ci95_eV"][0] < EA < d["Ea_ci95_eV"][1]
    assert png.stat().st_size > 10_000
    assert "Ea = " in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, message",
    [
        ("T,D\n600,1\n", r"has no column 'T_K'"),
        ("T_K,D_cm2_s,D_err_cm2_s\n600,1e-5,1e-6\n700,x,1e-6\n", r"line 3: values"),
        ("T_K,D_cm2_s,D_err_cm2_s\n", r"has no data rows"),
    ],
)
def test_csv_errors(tmp_path, text, message):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match="bad.csv' " + message):
        read_arrhenius_csv(f)


def test_fit_errors():
    with pytest.raises(InputError, match="at least two temperatures"):
        fit_arrhenius([600, 600], [1e-5, 2e-5], [1e-6, 1e-6])
    with pytest.raises(InputError, match=r"D must be positive.*T = \[700.0\]"):
        fit_arrhenius([600, 700], [1e-5, -1e-6], [1e-6, 1e-6])
    with pytest.raises(InputError, match=r"D_err must be positive.*T = \[600.0\]"):
        fit_arrhenius([600, 700], [1e-5, 2e-5], [0.0, 1e-6])
    assert main(["arrhenius", "/nonexistent/x.csv"]) == 2


def _make_sweep(tmp_path, rng, temps=(700.0, 900.0, 1200.0), seeds=(1, 2)):
    runs = []
    L = 12.0
    for T in temps:
        D_A2_ps = D0 * np.exp(-EA / (KB_EV_K * T)) * 1e4
        for s in seeds:
            rdir = tmp_path / "runs" / "toy" / f"{int(T)}K" / f"seed{s}"
            rdir.mkdir(parents=True)
            dt_ps = 0.05 / D_A2_ps * 0.02  # about the same number of hops per frame at every T
            li = brownian_walk(200, 24, D_A2_ps, dt_ps, rng, start_A=rng.uniform(0, L, (24, 3)))
            pos = np.concatenate([li, np.full((200, 8, 3), 3.0)], axis=1)
            every = 10
            dt_fs = dt_ps * 1e3 / every
            write_lammps_dump(rdir / "dump.lammpstrj", pos, np.eye(3) * L, np.array([1] * 24 + [2] * 8),
                              ["Li"] * 24 + ["F"] * 8, mode="image", timesteps=np.arange(200) * every)
            runs.append({"id": f"toy/{int(T)}K/seed{s}", "model": "toy", "T_K": T, "seed": s,
                         "dir": str(rdir.relative_to(tmp_path)), "status": "done",
                         "dump": str((rdir / "dump.lammpstrj").relative_to(tmp_path)),
                         "data_file": "lif.data", "dt_fs": dt_fs, "dump_every": every,
                         "species": ["Li"], "type_map": {"1": "Li", "2": "F"}, "error": None})
    runs.append({"id": "toy/1500K/seed1", "model": "toy", "T_K": 1500.0, "seed": 1, "status": "failed",
                 "dump": "runs/toy/1500K/seed1/dump.lammpstrj", "dt_fs": 1.0})
    (tmp_path / "sweep.json").write_text(json.dumps({"name": "toy-sweep", "runs": runs}))
    return tmp_path


def test_sweep_directory_groups_seeds_and_recovers_Ea(tmp_path, capsys):
    rng = np.random.default_rng(4)
    sweep = _make_sweep(tmp_path, rng)
    sw = analyse_sweep(sweep)
    assert set(sw.diffusion["toy"]) == {700.0, 900.0, 1200.0}
    assert all(r.n_runs == 2 for r in sw.diffusion["toy"].values())
    assert any("status failed" in s for s in sw.skipped)
    fit = sw.arrhenius["toy"]
    assert fit.Ea_ci95_eV[0] < EA < fit.Ea_ci95_eV[1]
    out = tmp_path / "a.json"
    assert main(["arrhenius", str(sweep), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["n_temperatures"] == 3
    # flags are carried through: 300 K is far below the fitted 700-1200 K
    assert "extrapolation-far" in d["flags"] and "flags: extrapolation-far" in capsys.readouterr().out
    assert fit.flags == d["flags"]
    # a flagged point (here: made not diffusive) makes the Ea flagged
    sw.diffusion["toy"][900.0].flags.append("not-diffusive")
    from ionmd.analysis.arrhenius import fit_arrhenius as refit

    Ts = sorted(sw.diffusion["toy"])
    f2 = refit(Ts, [sw.diffusion["toy"][T].D_cm2_s for T in Ts], [sw.diffusion["toy"][T].D_err_cm2_s for T in Ts],
               point_flags=[sw.diffusion["toy"][T].flags for T in Ts])
    assert "from-flagged-points" in f2.flags and f2.flagged_points_K == [900.0]


def test_sweep_errors(tmp_path):
    with pytest.raises(InputError, match="has no sweep.json"):
        analyse_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text("{bad")
    with pytest.raises(InputError, match="sweep.json' is not valid JSON: line 1"):
        analyse_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": [{"id": "a", "status": "done", "model": "m",
                                                               "T_K": 900, "dump": "x"}]}))
    with pytest.raises(InputError, match="run 'a' has no 'dt_fs'"):
        analyse_sweep(tmp_path)


def _mechanism_result(T_K: float, counts: dict[str, int], duration_ps: float):
    from ionmd.analysis.mechanism import MECHANISMS, MechanismResult

    full = {m: counts.get(m, 0) for m in MECHANISMS}
    return MechanismResult(species="Li", counts=full, rates_per_ps={}, rates_err_per_ps={},
                           n_hops=sum(full.values()), n_ions=33, n_lattice_sites=32,
                           n_interstitial_sites=64, duration_ps=duration_ps,
                           min_residence_ps=0.1, window_ps=0.5, assign_radius_A=0.8, T_K=T_K)


def test_defect_hop_arrhenius_recovers_barrier_from_poisson_counts():
    """Jump counts drawn from a known Arrhenius rate give back Ea inside the 95% interval.

    Rate nu exp(-Ea / kT) with Ea = 0.20 eV, nu = 8/ps; 40 ps per temperature at
    700-1000 K gives about 12-40 events per temperature. Over 200 draws the 95%
    interval must cover the true Ea in most of them, and its width must match the
    Poisson prediction: var(Ea) = 1 / (sum w x^2 - (sum w x)^2 / sum w) with
    x = 1/kT and weights w = expected counts.
    """
    from ionmd.analysis.report import defect_hop_arrhenius

    ea, nu, duration = 0.20, 8.0, 40.0
    temps = (700.0, 800.0, 900.0, 1000.0)
    rng = np.random.default_rng(3)
    covered, widths = 0, []
    for _ in range(200):
        by_T = {}
        for T in temps:
            n = rng.poisson(nu * np.exp(-ea / (KB_EV_K * T)) * duration)
            k = rng.binomial(n, 0.8)  # knock-off and direct events both move the defect
            by_T[T] = _mechanism_result(T, {"interstitialcy": k, "direct_interstitial": n - k,
                                            "vacancy": 5}, duration)
        fit = defect_hop_arrhenius(by_T, "synthetic")
        assert fit is not None and fit.quantity == "rate_per_ps"
        lo, hi = fit.Ea_ci95_eV
        covered += lo <= ea <= hi
        widths.append(hi - lo)
    assert covered >= 180  # nominal 95% coverage; 190 expected
    x = 1.0 / (KB_EV_K * np.array(temps))
    w = nu * np.exp(-ea * x) * duration
    sigma = 1.0 / np.sqrt(np.sum(w * x**2) - np.sum(w * x) ** 2 / np.sum(w))
    assert np.median(widths) == pytest.approx(2 * 1.96 * sigma, rel=0.3)
    # Poisson errors: the rate's relative error is 1/sqrt(count); vacancy hops are not counted.
    T = temps[0]
    n = by_T[T].counts["interstitialcy"] + by_T[T].counts["direct_interstitial"]
    i = fit.T_K.index(T)
    assert fit.D_cm2_s[i] == pytest.approx(n / duration)
    assert fit.D_err_cm2_s[i] == pytest.approx(np.sqrt(n) / duration)


def test_defect_hop_arrhenius_needs_events_at_two_temperatures():
    from ionmd.analysis.report import defect_hop_arrhenius

    by_T = {700.0: _mechanism_result(700.0, {}, 8.0),
            900.0: _mechanism_result(900.0, {"interstitialcy": 3}, 8.0)}
    assert defect_hop_arrhenius(by_T, "x") is None
    by_T[800.0] = _mechanism_result(800.0, {"direct_interstitial": 2}, 8.0)
    fit = defect_hop_arrhenius(by_T, "x")
    assert fit is not None and fit.T_K == [800.0, 900.0]  # the empty 700 K is left out
