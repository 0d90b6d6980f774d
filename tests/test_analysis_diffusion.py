"""Tracer MSD, D with uncertainty, seed combination, conductivity: checked against random walks with known D."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_area_cli

from ionmd.analysis.cli import register
from ionmd.analysis.diffusion import (
    A2_PS_TO_CM2_S,
    E_CHARGE_C,
    KB_J_K,
    add_conductivity,
    choose_window,
    combine_runs,
    diffusion_from_msd,
    diffusion_from_trajectory,
    excess_kurtosis,
    fit_slope,
)
from ionmd.analysis.msd import msd_direct, tracer_msd
from ionmd.analysis.synthetic import brownian_walk, lattice_walk, write_lammps_dump
from ionmd.analysis.trajectory import Selection, Trajectory, load_trajectory


def main(argv):
    """``ionmd`` with this area's sub-commands only."""
    return run_area_cli(register, argv)


def _traj(pos, dt_ps, L=20.0):
    n = pos.shape[0]
    return Trajectory(pos, np.arange(n) * dt_ps, np.full(n, L**3), np.broadcast_to(np.eye(3) * L, (n, 3, 3)),
                      np.zeros((n, 3)), ["Li"] * pos.shape[1], np.arange(pos.shape[1]), np.zeros((n, 3)), False, "mem")


def test_fft_msd_equals_direct_all_origins():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(97, 5, 3)), axis=0) + 100.0
    m = tracer_msd(x, 0.5)
    lags = np.array([0, 1, 2, 17, 50, 96])
    np.testing.assert_allclose(m.msd_A2[lags], msd_direct(x, lags), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m.time_ps[lags], lags * 0.5)
    per_axis = [msd_direct(x[:, :, [k]], lags) for k in range(3)]
    np.testing.assert_allclose(m.msd_axis_A2[lags], np.array(per_axis).T, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", ["unwrapped", "image"])
@pytest.mark.parametrize("walk", ["brownian", "lattice"])
def test_D_from_dump_matches_truth(tmp_path, mode, walk):
    rng = np.random.default_rng(11)
    dt_ps, n, N, L = 0.02, 300, 48, 12.0
    if walk == "brownian":
        D_true = 0.8  # Å^2/ps
        li = brownian_walk(n, N, D_true, dt_ps, rng, start_A=rng.uniform(0, L, (N, 3)))
    else:
        a = 1.5
        li = lattice_walk(n, N, a, 2, rng) + rng.integers(0, 8, (1, N, 3)) * a
        D_true = 2 * a**2 / (6 * dt_ps)
    fw = np.broadcast_to(rng.uniform(0, L, (1, 16, 3)), (n, 16, 3))
    pos = np.concatenate([li, fw], axis=1)
    types = np.array([1] * N + [2] * 16)
    path = write_lammps_dump(tmp_path / "w.lammpstrj", pos, np.eye(3) * L, types, mode=mode,
                             timesteps=np.arange(n) * 20)
    traj = load_trajectory(path, Selection(species=["Li"], type_map={1: "Li", 2: "F"}), dt_fs=1.0)
    res, _ = diffusion_from_trajectory(traj, "Li")
    truth = D_true * A2_PS_TO_CM2_S
    assert res.n_ions == N and res.n_frames == n
    assert abs(res.D_cm2_s - truth) < 3 * res.D_err_cm2_s
    assert res.D_err_cm2_s < 0.1 * truth
    assert res.D_ci95_cm2_s[0] < res.D_cm2_s < res.D_ci95_cm2_s[1]
    assert res.diffusive and 0.9 < res.loglog_slope < 1.1
    np.testing.assert_allclose(res.D_axis_cm2_s, truth, rtol=0.25)
    assert 0 < res.fit_window_ps[0] < res.fit_window_ps[1] <= 0.5 * (n - 1) * dt_ps + 1e-9


@pytest.mark.parametrize("walk", ["brownian", "lattice"])
def test_95_interval_covers_truth_in_90_to_99_of_100_walks(walk):
    rng = np.random.default_rng(2024 if walk == "brownian" else 7)
    dt_ps, n, N = 0.1, 160, 24
    covered = 0
    for _ in range(100):
        if walk == "brownian":
            D_true = 0.5
            pos = brownian_walk(n, N, D_true, dt_ps, rng)
        else:
            pos = lattice_walk(n, N, 1.0, 3, rng)
            D_true = 3 / (6 * dt_ps)
        res = diffusion_from_msd(tracer_msd(pos, dt_ps), "Li")
        lo, hi = res.D_ci95_cm2_s
        covered += lo <= D_true * A2_PS_TO_CM2_S <= (hi if hi is not None else np.inf)
    assert 90 <= covered <= 99, covered


def _rare_hops(rng, n, N, q, a=4.03, noise=0.1):
    """fcc nearest-neighbour hops (length a/sqrt2) with probability q per frame: strongly non-Gaussian."""
    nn = np.array([[s1, s2, 0] for s1 in (-1, 1) for s2 in (-1, 1)], dtype=float)
    nn = np.vstack([nn, nn[:, [0, 2, 1]], nn[:, [2, 0, 1]]]) * a / 2
    hop = rng.random((n, N)) < q
    hop[0] = False
    steps = nn[rng.integers(0, 12, (n, N))] * hop[..., None]
    return np.cumsum(steps, axis=0) + rng.normal(0, noise, (n, N, 3))


def test_excess_fourth_moment_of_rare_hops_is_measured():
    rng = np.random.default_rng(3)
    q, ell2 = 0.02, 4.03**2 / 2
    t = _traj(_rare_hops(rng, 1000, 64, q, noise=0.0), 1.0)
    m = tracer_msd(t.positions_A, 1.0)
    K = excess_kurtosis(t.positions_A, choose_window(m))
    exact = q * ell2**2 - 5.0 / 3.0 * q**2 * ell2**2  # Var(|xi|^2) - 6 s^4 per frame
    assert abs(K - exact) < 0.2 * exact
    assert excess_kurtosis(brownian_walk(400, 64, 0.5, 0.1, rng), choose_window(m)) < 0.05 * exact


def test_95_interval_covers_truth_for_rare_hops():
    """Gaussian error models fail for rare jumps (the naive interval covers ~70%); the K term fixes it."""
    rng = np.random.default_rng(21)
    q, n, N = 0.03, 200, 24
    truth = q * 4.03**2 / 12 * A2_PS_TO_CM2_S
    covered = 0
    for _ in range(100):
        res, _ = diffusion_from_trajectory(_traj(_rare_hops(rng, n, N, q), 1.0), "Li")
        lo, hi = res.D_ci95_cm2_s
        covered += lo <= truth <= (hi if hi is not None else np.inf)
    assert 90 <= covered <= 99, covered


def test_ols_style_error_would_be_too_small():
    """The modelled covariance matters: the naive residual error of an OLS fit understates the spread."""
    rng = np.random.default_rng(5)
    dt_ps, n, N = 0.1, 160, 24
    slopes, errs, naive = [], [], []
    for _ in range(40):
        pos = brownian_walk(n, N, 0.5, dt_ps, rng)
        m = tracer_msd(pos, dt_ps)
        w = choose_window(m)
        s, e, _ = fit_slope(m.msd_A2, n, dt_ps, w, N)
        lags = np.arange(w.start, w.end + 1)
        _, cov = np.polyfit(lags * dt_ps, m.msd_A2[lags], 1, cov=True)
        slopes.append(s)
        errs.append(e)
        naive.append(np.sqrt(cov[0, 0]))
    spread = np.std(slopes)
    assert 0.7 < np.mean(errs) / spread < 1.4
    assert np.mean(naive) < 0.5 * spread


def test_combine_seeds_and_birge_inflation():
    rng = np.random.default_rng(8)
    results = []
    for _ in range(4):
        res, _ = diffusion_from_trajectory(_traj(brownian_walk(200, 20, 0.5, 0.1, rng), 0.1), "Li")
        results.append(res)
    comb = combine_runs(results)
    truth = 0.5 * A2_PS_TO_CM2_S
    assert comb.n_runs == 4 and len(comb.runs_D_cm2_s) == 4
    assert comb.D_err_cm2_s < min(r.D_err_cm2_s for r in results)
    assert abs(comb.D_cm2_s - truth) < 3 * comb.D_err_cm2_s
    # runs that disagree far beyond their errors: the combined error is inflated
    bad = [results[0], results[1]]
    bad[1].D_cm2_s *= 3.0
    bad[1].D_err_cm2_s *= 3.0
    c2 = combine_runs(bad)
    assert c2.chi2_red_runs > 4 and c2.D_err_cm2_s > 3 * min(r.D_err_cm2_s for r in bad) / np.sqrt(2)


def test_conductivity_haven_ratio_independent_and_correlated_ions():
    rng = np.random.default_rng(9)
    dt_ps, n, N, L, T = 0.1, 400, 16, 20.0, 600.0
    # independent ions: collective D equals tracer D, Haven ratio 1
    t1 = _traj(brownian_walk(n, N, 0.5, dt_ps, rng), dt_ps, L)
    r1, _ = diffusion_from_trajectory(t1, "Li")
    add_conductivity(r1, t1, {"Li": 1.0}, T)
    expected = N * E_CHARGE_C**2 * (0.5e-20 / 1e-12) / (L**3 * 1e-30 * KB_J_K * T) * 10.0
    assert abs(r1.sigma_mS_cm - expected) < 3 * r1.sigma_err_mS_cm
    assert abs(r1.sigma_NE_mS_cm - expected) < 0.15 * expected
    assert abs(r1.haven_ratio - 1.0) < 3 * r1.haven_ratio_err
    # ions moving in lock-step: the collective MSD is N^2 times a single ion's, Haven ratio 1/N
    one = brownian_walk(n, 1, 0.5, dt_ps, rng)
    t2 = _traj(np.repeat(one, N, axis=1) + rng.uniform(0, L, (1, N, 3)), dt_ps, L)
    r2, _ = diffusion_from_trajectory(t2, "Li")
    add_conductivity(r2, t2, {"Li": 1.0}, T)
    np.testing.assert_allclose(r2.haven_ratio, 1.0 / N, rtol=1e-6)


def test_cli_diffusion_json_keys_and_seed_combination(tmp_path, capsys):
    rng = np.random.default_rng(12)
    dumps = []
    for s in range(2):
        pos = np.concatenate([brownian_walk(120, 12, 0.5, 0.1, rng), np.full((120, 12, 3), 5.0)], axis=1)
        dumps.append(str(write_lammps_dump(tmp_path / f"s{s}.lammpstrj", pos, np.eye(3) * 15, np.array(
            [1] * 12 + [2] * 12), ["Li"] * 12 + ["F"] * 12, mode="image", timesteps=np.arange(120) * 100)))
    out = tmp_path / "d.json"
    plot = tmp_path / "msd.png"
    rc = main(["diffusion", *dumps, "--species", "Li", "--dt-fs", "1.0", "--json", str(out),
               "--charges", "Li=1,F=-1", "--temperature-K", "800", "--plot", str(plot)])
    assert rc == 0
    d = json.loads(out.read_text())
    for key in ("D_cm2_s", "D_err_cm2_s", "D_ci95_cm2_s", "fit_window_ps", "n_frames", "n_ions", "species",
                "sigma_mS_cm", "haven_ratio"):
        assert key in d, key
    assert d["n_runs"] == 2 and d["n_ions"] == 12 and d["species"] == "Li"
    assert abs(d["D_cm2_s"] - 0.5e-4) < 3 * d["D_err_cm2_s"]
    assert plot.stat().st_size > 10_000
    assert "D = " in capsys.readouterr().out
    # user errors are reported without a traceback, exit code 2
    assert main(["diffusion", dumps[0], "--species", "Na", "--dt-fs", "1"]) == 2
    assert "species 'Na' is not in dump" in capsys.readouterr().err
    assert main(["diffusion", dumps[0], "--species", "Li", "--dt-fs", "1", "--charges", "Li:1"]) == 2
    assert "charge entry 'Li:1'" in capsys.readouterr().err
    assert main(["diffusion", dumps[0], "--species", "Li", "--dt-fs", "1", "--charges", "Li=1"]) == 2
    assert "--temperature-K" in capsys.readouterr().err
    assert main(["diffusion", dumps[0], "--types", "x", "--dt-fs", "1"]) == 2
    assert "--types entry 'x'" in capsys.readouterr().err


def test_cli_type_map_from_data_file_and_option(tmp_path, capsys):
    from ionmd.analysis.synthetic import write_data_file

    rng = np.random.default_rng(13)
    pos = np.concatenate([brownian_walk(80, 10, 0.5, 0.1, rng), np.full((80, 4, 3), 5.0)], axis=1)
    types = np.array([1] * 10 + [2] * 4)
    dump = write_lammps_dump(tmp_path / "d.lammpstrj", pos, np.eye(3) * 15, types, None,
                             timesteps=np.arange(80) * 100)
    data = write_data_file(tmp_path / "s.data", pos[0], types, np.eye(3) * 15, {1: "Li", 2: "F"})
    outs = []
    for extra in (["--data", str(data)], ["--type-map", "1=Li,2=F"], ["--types", "1"]):
        out = tmp_path / "o.json"
        sel = [] if "--types" in extra else ["--species", "Li"]
        assert main(["diffusion", str(dump), *sel, *extra, "--dt-fs", "1", "--json", str(out)]) == 0
        outs.append(json.loads(out.read_text()))
    assert outs[0]["D_cm2_s"] == outs[1]["D_cm2_s"] == outs[2]["D_cm2_s"]
    assert outs[0]["species"] == "Li" and outs[2]["species"] == "type 1"
    assert main(["diffusion", str(dump), "--species", "Li", "--dt-fs", "1"]) == 2
    assert "no element column" in capsys.readouterr().err


def test_cli_fit_window_override_and_ase_traj(tmp_path, capsys):
    import ase.io
    from ase import Atoms

    rng = np.random.default_rng(14)
    pos = brownian_walk(100, 8, 0.5, 0.1, rng, start_A=rng.uniform(0, 10, (8, 3)))
    frames = []
    for k in range(100):
        a = Atoms(["Li"] * 8, positions=pos[k], cell=np.eye(3) * 10, pbc=True)
        a.wrap()
        frames.append(a)
    ase.io.write(tmp_path / "t.traj", frames)
    out = tmp_path / "o.json"
    # an ASE .traj without timesteps: the frame interval is given (100 fs); --dt-fs is refused
    assert main(["diffusion", str(tmp_path / "t.traj"), "--species", "Li", "--dt-fs", "100"]) == 2
    assert "pass --frame-interval-fs" in capsys.readouterr().err
    assert main(["diffusion", str(tmp_path / "t.traj"), "--species", "Li", "--frame-interval-fs", "100",
                 "--fit-window-ps", "1", "4", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["fit_window_ps"] == pytest.approx([1.0, 4.0])
    assert abs(d["D_cm2_s"] - 0.5e-4) < 4 * d["D_err_cm2_s"]
    assert main(["diffusion", str(tmp_path / "t.traj"), "--species", "Li", "--frame-interval-fs", "100",
                 "--fit-window-ps", "4", "1"]) == 2
    assert "fit window 4-1 ps is not inside the run" in capsys.readouterr().err
