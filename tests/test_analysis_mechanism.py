"""Site finding and hop-mechanism classification on rock-salt LiF with planted events."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionmd.analysis.mechanism import analyse_mechanisms
from ionmd.analysis.sites import find_sites, parse_fractional_sites
from ionmd.analysis.synthetic import write_lammps_dump
from ionmd.analysis.trajectory import Selection
from ionmd.errors import InputError
from ionmd.lammpsio.datafile import ReferenceStructure, read_data_file

A = 4.03  # Å, LiF conventional cell
FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def _rocksalt(n=2):
    cells = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)])
    li = (FCC[None] + cells[:, None]).reshape(-1, 3) * A
    f = np.mod((FCC[None] + cells[:, None] + [0.5, 0, 0]).reshape(-1, 3), n) * A
    return li, f, np.eye(3) * n * A


def _write_data(path, li, f, cell):
    pos = np.vstack([li, f])
    types = [1] * len(li) + [2] * len(f)
    rows = "".join(f"{k + 1} {t} {p[0]:.6f} {p[1]:.6f} {p[2]:.6f}\n" for k, (t, p) in
                   enumerate(zip(types, pos, strict=True)))
    path.write_text(
        f"LiF test type_map: 1=Li 2=F\n\n{len(pos)} atoms\n2 atom types\n\n0 {cell[0, 0]} xlo xhi\n"
        f"0 {cell[1, 1]} ylo yhi\n0 {cell[2, 2]} zlo zhi\n\nMasses\n\n1 6.94 # Li\n2 19.00 # F\n\n"
        f"Atoms # atomic\n\n{rows}")
    return path


def _ref(li, f, cell):
    pos = np.vstack([li, f])
    return ReferenceStructure(cell, np.zeros(3), pos, np.array([1] * len(li) + [2] * len(f)),
                              ["Li"] * len(li) + ["F"] * len(f), {1: "Li", 2: "F"}, "mem")


def test_rocksalt_sites_are_octahedral_lattice_and_tetrahedral_interstitial():
    li, f, cell = _rocksalt(2)
    s = find_sites(_ref(li, f, cell), ["Li"])
    assert s.n_lattice == 32 and s.n_interstitial == 64
    conv = np.mod(s.frac[s.kind == "I"] * 2, 1.0)  # fractional in the conventional cell
    np.testing.assert_allclose(np.sort(np.unique(np.round(conv, 6))), [0.25, 0.75])
    np.testing.assert_allclose(s.min_separation_A(), np.sqrt(3) / 4 * A, rtol=1e-6)


def test_sites_with_defects_and_triclinic_primitive_cell():
    li, f, cell = _rocksalt(2)
    li_def = np.vstack([np.delete(li, 5, axis=0), [[A / 4, A / 4, A / 4]]])  # a vacancy and an interstitial
    s = find_sites(_ref(li_def, f, cell), ["Li"])
    assert s.n_lattice == 32 and s.n_interstitial == 64  # the vacant site is still a lattice site
    # primitive fcc cell of LiF (triclinic), 2x2x2: 8 Li lattice sites and 16 tetrahedral sites
    prim = 0.5 * A * np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    sup = 2 * prim
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float)
    li_p = grid @ prim
    f_p = li_p + np.array([0.5, 0.5, 0.5]) @ prim
    tri = ReferenceStructure(sup, np.zeros(3), np.vstack([li_p, f_p]), np.array([1] * 8 + [2] * 8),
                             ["Li"] * 8 + ["F"] * 8, {1: "Li", 2: "F"}, "mem")
    s = find_sites(tri, ["Li"])
    assert s.n_lattice == 8 and s.n_interstitial == 16


def _planted(tmp_path, rng):
    """Reference with one vacancy and one interstitial; a trajectory with planted events.

    Returns the dump, the reference data file and the atom ids of the knock-off pair.
    """
    li, f, cell = _rocksalt(2)
    vac = int(np.argmin(np.linalg.norm(li - [A, A, A], axis=1)))
    li = np.delete(li, vac, axis=0)
    T1 = np.array([A / 4, A / 4, A / 4])
    li = np.vstack([li, T1])  # the interstitial X is the last Li
    ref = _write_data(tmp_path / "ref.data", li, f, cell)
    n = 320
    traj = np.broadcast_to(li, (n, *li.shape)).copy()

    def move(ion, frame, dest, n_transit=4, back_after=None):
        src = traj[frame - 1, ion].copy()
        for k in range(n_transit):
            traj[frame + k, ion] = src + (dest - src) * (k + 1) / n_transit
        end = n if back_after is None else frame + n_transit + back_after
        traj[frame + n_transit : end, ion] = dest
        if back_after is not None:
            traj[end:, ion] = src

    X = len(li) - 1
    Y = int(np.argmin(np.linalg.norm(li[:-1], axis=1)))  # lattice Li at the origin, next to T1
    move(X, 100, np.zeros(3))  # X: T1 -> L(origin), pushing Y ...
    move(Y, 100, -T1)  # ... Y: L(origin) -> T2 (collinear interstitialcy)
    move(Y, 150, -T1 + [A / 2, 0, 0])  # direct interstitial hop T2 -> T3
    W = int(np.argmin(np.linalg.norm(li - [A, A / 2, A / 2], axis=1)))
    move(W, 200, np.array([A, A, A]))  # vacancy hop into the vacant site
    R = int(np.argmin(np.linalg.norm(li - [0, A / 2, A / 2], axis=1)))
    move(R, 250, np.array([A / 4, 3 * A / 4, A / 4]), n_transit=1, back_after=2)  # rattling, 3 frames
    traj += rng.normal(0, 0.08, traj.shape)
    fw = np.broadcast_to(f, (n, *f.shape)) + rng.normal(0, 0.05, (n, *f.shape))
    pos = np.concatenate([traj, fw], axis=1)
    types = np.array([1] * len(li) + [2] * len(f))
    dump = write_lammps_dump(tmp_path / "dump.lammpstrj", pos, cell, types, None, mode="image",
                             timesteps=np.arange(n) * 10)
    return dump, ref, {X + 1, Y + 1}


def test_planted_knockoff_direct_and_vacancy_hops_are_classified(tmp_path):
    dump, ref, pair = _planted(tmp_path, np.random.default_rng(0))
    res = analyse_mechanisms(dump, ref, Selection(species=["Li"]), dt_fs=1.0, min_residence_ps=0.1)
    assert res.n_lattice_sites == 32 and res.n_interstitial_sites == 64
    assert res.counts == {"interstitialcy": 1, "direct_interstitial": 1, "vacancy": 1,
                          "frenkel_formation": 0, "recombination": 0}
    assert res.n_hops == 4
    ko = next(e for e in res.events if e.mechanism == "interstitialcy")
    assert set(ko.ion_ids) == pair
    assert ko.time_ps == pytest.approx(1.0, abs=0.05)
    np.testing.assert_allclose(res.rates_per_ps["vacancy"], 1 / 3.19)
    json.loads(res.to_json())
    # without the residence filter the 3-frame rattle is two hops: an excursion out and back within the
    # window is no event, with a shorter window it is a Frenkel pair and its recombination
    raw = analyse_mechanisms(dump, ref, Selection(species=["Li"]), dt_fs=1.0, min_residence_ps=0.005)
    assert raw.n_hops == 6 and raw.counts == res.counts
    raw = analyse_mechanisms(dump, ref, Selection(species=["Li"]), dt_fs=1.0, min_residence_ps=0.005,
                             window_ps=0.01)
    assert raw.counts["frenkel_formation"] == 2 and raw.counts["recombination"] == 2  # rattle + unpaired knock-off
    # the pair is a knock-off only within the window: Y leaves the site 2 frames before X arrives
    far = analyse_mechanisms(dump, ref, Selection(types=[1]), dt_fs=1.0, window_ps=0.01)
    assert far.counts["interstitialcy"] == 0
    assert far.counts["frenkel_formation"] == 1 and far.counts["recombination"] == 1


def test_mechanism_cli_and_errors(tmp_path, capsys):
    import argparse

    from ionmd.analysis.cli import register

    dump, ref, _ = _planted(tmp_path, np.random.default_rng(1))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out, png = tmp_path / "m.json", tmp_path / "m.png"
    args = parser.parse_args(["mechanism", str(dump), "--reference", str(ref), "--species", "Li",
                              "--dt-fs", "1", "--json", str(out), "--plot", str(png)])
    assert args.func(args) == 0
    assert json.loads(out.read_text())["counts"]["interstitialcy"] == 1
    assert png.stat().st_size > 5000
    assert "interstitialcy" in capsys.readouterr().out
    with pytest.raises(InputError, match="has no atom of species"):
        find_sites(read_data_file(ref), ["Na"])
    with pytest.raises(InputError, match="interstitial site '0.1,0.2' is not three numbers"):
        parse_fractional_sites("0.25,0.25,0.25;0.1,0.2")
    given = parse_fractional_sites("0.125,0.125,0.125; 0.625 0.625 0.625")
    s = find_sites(read_data_file(ref), ["Li"], interstitial_frac=given)
    assert s.n_interstitial == 2 and s.n_lattice == 32 and s.n_vacancies == 1  # the vacancy is kept


def test_mechanism_cli_site_options(tmp_path, capsys):
    """`--interstitials ""` means no interstitial sites and keeps the vacancy; `--perfect` gives the sites."""
    import argparse

    from ionmd.analysis.cli import register

    dump, ref, _ = _planted(tmp_path, np.random.default_rng(2))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "m.json"
    base = ["mechanism", str(dump), "--reference", str(ref), "--species", "Li", "--dt-fs", "1", "--json", str(out)]
    args = parser.parse_args(base + ["--interstitials", ""])
    assert args.func(args) == 0
    res = json.loads(out.read_text())
    assert res["n_interstitial_sites"] == 0 and res["n_lattice_sites"] == 32
    assert res["counts"]["interstitialcy"] == 0  # no interstitial sites, so no interstitial mechanism
    assert [s["label"] for s in res["sublattices"]] == ["Li(1)"]
    assert "Li(1) (Wyckoff" in capsys.readouterr().out
    li, f, cell = _rocksalt(2)
    perfect = _write_data(tmp_path / "perfect.data", li, f, cell)
    args = parser.parse_args(base + ["--perfect", str(perfect)])
    assert args.func(args) == 0
    res = json.loads(out.read_text())
    assert res["n_lattice_sites"] == 32 and res["n_interstitial_sites"] == 64
    assert res["counts"]["interstitialcy"] == 1 and res["counts"]["vacancy"] == 1
    assert res["n_vacancies"] == 1 and res["n_interstitial_ions"] == 1
    with pytest.raises(InputError, match="--leave-radius-A -1.0 must be a positive number"):
        args = parser.parse_args(base + ["--leave-radius-A", "-1"])
        args.func(args)


def test_defect_counts_do_not_count_ions_in_transit_as_vacancies():
    """4 lattice sites, 3 ions (one vacancy), 1 void site. Ion 0 leaves site 0 and stays in
    transit (-1) while ion 1 moves onto site 0 and ion 2 onto site 1: frame by frame, two
    lattice sites are then empty, but there is still one vacancy (ion 0 is between sites).
    A frame with ion 2 on the void makes a Frenkel pair: 2 vacancies, 1 interstitial."""
    from ionmd.analysis.mechanism import defect_counts
    from ionmd.analysis.sites import SiteSet

    sites = SiteSet(frac=np.array([[0.0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.25, 0.25, 0.25]]),
                    kind=np.array(["L", "L", "L", "L", "I"]), cell_A=np.eye(3) * 4.0)
    transit = np.array([[0, 1, 2]] * 2 + [[-1, 0, 1]] * 5)
    assert defect_counts(transit, sites) == (1, 0)
    frenkel = np.array([[0, 1, 4]] * 5 + [[0, 1, 2]] * 2)
    assert defect_counts(frenkel, sites) == (2, 1)
