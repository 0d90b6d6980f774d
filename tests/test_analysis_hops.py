"""Hop classification on synthetic trajectories with known hops.

A vacancy walks through an alpha-Li3N-like cell (P6/mmm, Li(1) 1b, Li(2) 2c): at
each event one Li next to the vacancy (in-plane Li(2) at a/sqrt 3 = 2.11 Å, or the
interlayer Li(1)-Li(2) neighbour at 2.86 Å) moves into it in a few frames, then
everything vibrates with Gaussian noise. The count of each class must match the
planted sequence exactly, at 0.1 and 0.25 Å (per component) vibration.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_analysis_sites import as_reference, li3n_with_vacancy

from ionmd.analysis.hops import HopClassifier, poisson_ci95
from ionmd.analysis.mechanism import mechanisms_from_trajectory, merge_results
from ionmd.analysis.sites import find_sites
from ionmd.analysis.trajectory import Trajectory

DT_PS = 0.01


def _min_image(d_frac: np.ndarray) -> np.ndarray:
    return d_frac - np.round(d_frac)


def vacancy_walk(noise_A: float, rng: np.random.Generator, n_events: int = 14, gap: int = 30, n_transit: int = 4):
    """Trajectory of the Li ions of a Li3N cell with one vacancy hopping; truth counts per class."""
    sc, vac = li3n_with_vacancy()
    cell = np.asarray(sc.cell[:])
    is_li = np.array([s == "Li" for s in sc.get_chemical_symbols()])
    rest = sc.positions[is_li].copy()  # unwrapped rest position of each ion, Å
    n_f = gap * (n_events + 1)
    pos = np.broadcast_to(rest, (n_f, len(rest), 3)).copy()
    truth = {"in-plane": 0, "interlayer": 0}
    for e in range(n_events):
        d = _min_image(vac - np.linalg.solve(cell.T, rest.T).T) @ cell
        cand = np.flatnonzero(np.linalg.norm(d, axis=1) < 2.9)
        ion = int(rng.choice(cand))
        truth["in-plane" if abs(d[ion, 2]) < 1e-6 else "interlayer"] += 1
        t0 = gap * (e + 1)
        for k in range(n_transit):
            pos[t0 + k, ion] = rest[ion] + d[ion] * (k + 1) / n_transit
        vac = np.mod(np.linalg.solve(cell.T, rest[ion]), 1.0)
        rest[ion] = rest[ion] + d[ion]
        pos[t0 + n_transit:, ion] = rest[ion]
    pos += rng.normal(0, noise_A, pos.shape)
    traj = Trajectory(pos, np.arange(n_f) * DT_PS, np.full(n_f, abs(np.linalg.det(cell))),
                      np.broadcast_to(cell, (n_f, 3, 3)).copy(), np.zeros((n_f, 3)), ["Li"] * len(rest),
                      np.arange(1, len(rest) + 1), np.zeros((n_f, 3)), False, f"walk {noise_A}")
    return traj, as_reference(sc), truth


@pytest.mark.parametrize("noise_A", [0.1, 0.25])
@pytest.mark.parametrize("voids", [False, True])
def test_vacancy_hops_split_into_in_plane_and_interlayer_classes(noise_A, voids):
    traj, ref, truth = vacancy_walk(noise_A, np.random.default_rng(7))
    assert truth["in-plane"] >= 3 and truth["interlayer"] >= 3
    sites = find_sites(ref, ["Li"], interstitial_frac=None if voids else np.zeros((0, 3)))
    res = mechanisms_from_trajectory(traj, sites, "Li", min_residence_ps=0.1)
    inplane = next(h for h in res.hop_classes if h.hop_class.direction == "in-plane")
    inter = next(h for h in res.hop_classes if h.hop_class.direction not in ("in-plane", "along c"))
    assert len(res.hop_classes) == 2, [h.hop_class.label for h in res.hop_classes]
    assert inplane.count == truth["in-plane"] and inter.count == truth["interlayer"]
    assert (inplane.hop_class.from_sublattice, inplane.hop_class.to_sublattice) == ("Li(2)", "Li(2)")
    assert (inter.hop_class.from_sublattice, inter.hop_class.to_sublattice) == ("Li(1)", "Li(2)")
    assert inplane.hop_class.distance_A == pytest.approx(3.65 / np.sqrt(3), abs=1e-6)
    assert inter.hop_class.distance_A == pytest.approx(np.hypot(3.65 / np.sqrt(3), 3.87 / 2), abs=1e-6)
    assert inter.hop_class.angle_to_axis_deg == pytest.approx(np.degrees(np.arctan2(3.65 / np.sqrt(3), 3.87 / 2)))
    assert res.counts["vacancy"] == sum(truth.values())
    assert res.counts["frenkel_formation"] == res.counts["recombination"] == res.counts["interstitialcy"] == 0
    assert inplane.basis == "per vacancy" and inplane.n_carriers == 1
    assert inplane.rate_per_ps == pytest.approx(truth["in-plane"] / res.duration_ps)
    lo, hi = inplane.rate_ci95_per_ps
    assert lo < inplane.rate_per_ps < hi
    assert 0 < res.transit_fraction < (0.2 if voids else 0.05) and "transit_fraction_high" not in res.flags
    # the representative end points are one hop apart, in the reference cell
    for h in (inplane, inter):
        d = (np.array(h.hop_class.end_frac) - np.array(h.hop_class.start_frac)) @ ref.cell_A
        assert np.linalg.norm(d) == pytest.approx(h.hop_class.distance_A)
        assert set(h.hop_class.to_dict()) >= {"label", "start_frac", "end_frac", "from_sublattice"}


def test_no_hysteresis_at_large_vibration_loses_stays_and_reports_transit():
    """Without hysteresis (leave radius = enter radius) the 0.25 Å walk is over-counted and in transit."""
    traj, ref, truth = vacancy_walk(0.25, np.random.default_rng(7))
    sites = find_sites(ref, ["Li"], interstitial_frac=np.zeros((0, 3)))
    sep = sites.min_separation_A()
    tight = mechanisms_from_trajectory(traj, sites, "Li", assign_radius_A=0.25 * sep, leave_radius_A=0.25 * sep)
    assert tight.transit_fraction > 0.2 and "transit_fraction_high" in tight.flags
    good = mechanisms_from_trajectory(traj, sites, "Li", assign_radius_A=0.25 * sep)
    assert sum(h.count for h in good.hop_classes) == sum(truth.values())
    assert good.transit_fraction < tight.transit_fraction


def test_merge_results_sums_seeds_per_class():
    r = []
    for seed in (1, 2):
        traj, ref, _ = vacancy_walk(0.1, np.random.default_rng(seed))
        sites = find_sites(ref, ["Li"], interstitial_frac=np.zeros((0, 3)))
        r.append(mechanisms_from_trajectory(traj, sites, "Li"))
    m = merge_results(r)
    assert m.duration_ps == pytest.approx(r[0].duration_ps + r[1].duration_ps)
    for h in m.hop_classes:
        n = sum(x.count for res in r for x in res.hop_classes if x.hop_class.label == h.hop_class.label)
        assert h.count == n and h.rate_per_ps == pytest.approx(n / m.duration_ps)


def test_rocksalt_nearest_neighbour_hops_are_one_class():
    from ase.spacegroup import crystal

    sc = crystal(["Li", "F"], basis=[(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                 cellpar=[4.03] * 3 + [90] * 3).repeat(2)
    sites = find_sites(as_reference(sc), ["Li"], interstitial_frac=np.zeros((0, 3)))
    hc = HopClassifier(sites)
    lat = sites.frac
    classes = set()
    for i in range(0, len(lat), 5):
        d = _min_image(lat - lat[i]) @ sites.cell_A
        for j in np.flatnonzero(np.abs(np.linalg.norm(d, axis=1) - 4.03 / np.sqrt(2)) < 1e-6):
            classes.add(hc.classify(i, int(j)))
        for j in np.flatnonzero(np.abs(np.linalg.norm(d, axis=1) - 4.03) < 1e-6):
            classes.add(hc.classify(i, int(j)))
    assert len(hc.classes) == 2 and len(classes) == 2
    assert sorted(c.direction for c in hc.classes) == ["", ""]  # cubic: no unique axis
    assert sorted(round(c.distance_A, 3) for c in hc.classes) == [round(4.03 / np.sqrt(2), 3), 4.03]


def test_poisson_interval():
    lo, hi = poisson_ci95(0)
    assert lo == 0 and hi == pytest.approx(3.689, abs=1e-3)
    lo, hi = poisson_ci95(10)
    assert lo == pytest.approx(4.795, abs=1e-3) and hi == pytest.approx(18.39, abs=1e-2)


def test_perfect_reference_counts_the_vacancy_from_the_trajectory():
    """The reference may be the perfect cell: the vacancy is counted from the MD, not the reference."""
    from test_analysis_sites import li3n_cell

    traj, _, truth = vacancy_walk(0.1, np.random.default_rng(3))
    sites = find_sites(as_reference(li3n_cell().repeat((3, 3, 2))), ["Li"], interstitial_frac=np.zeros((0, 3)))
    assert sites.n_vacancies == 0
    res = mechanisms_from_trajectory(traj, sites, "Li")
    assert res.n_vacancies == 1 and res.n_interstitial_ions == 0
    assert {h.basis for h in res.hop_classes} == {"per vacancy"}
    assert sum(h.count for h in res.hop_classes) == sum(truth.values())


def test_vacancy_hop_by_way_of_an_interstitial_site_is_one_vacancy_event():
    """Rock salt with a vacancy: an ion goes lattice -> tetrahedral void -> the vacant site (one vacancy
    event, not a Frenkel pair and a recombination); another goes to a void and back (no event)."""
    from ase.spacegroup import crystal

    a = 4.03
    sc = crystal(["Li", "F"], basis=[(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                 cellpar=[a] * 3 + [90] * 3).repeat(2)
    sym = sc.get_chemical_symbols()
    li = [i for i, s in enumerate(sym) if s == "Li"]
    vac_pos = np.array([a / 2, a / 2, 0])
    del sc[[i for i in li if np.linalg.norm(sc.positions[i] - vac_pos) < 1e-6][0]]
    ref = as_reference(sc)
    sites = find_sites(ref, ["Li"])
    is_li = np.array([s == "Li" for s in sc.get_chemical_symbols()])
    rest = sc.positions[is_li]
    n_f = 200
    pos = np.broadcast_to(rest, (n_f, len(rest), 3)).copy()
    mover = int(np.argmin(np.linalg.norm(rest, axis=1)))  # the Li at the origin
    tet = np.array([a / 4, a / 4, a / 4])
    pos[50:52, mover] = [rest[mover] + (tet - rest[mover]) * f for f in (1 / 3, 2 / 3)]
    pos[52:70, mover] = tet
    pos[70:72, mover] = [tet + (vac_pos - tet) * f for f in (1 / 3, 2 / 3)]
    pos[72:, mover] = vac_pos
    back = int(np.argmin(np.linalg.norm(rest - [a, a, a], axis=1)))  # a Li far away: out and back
    tet2 = np.array([a, a, a]) + [a / 4, a / 4, -a / 4]
    pos[120:140, back] = tet2
    pos += np.random.default_rng(5).normal(0, 0.1, pos.shape)
    traj = Trajectory(pos, np.arange(n_f) * DT_PS, np.full(n_f, sc.get_volume()),
                      np.broadcast_to(np.asarray(sc.cell[:]), (n_f, 3, 3)).copy(), np.zeros((n_f, 3)),
                      ["Li"] * len(rest), np.arange(1, len(rest) + 1), np.zeros((n_f, 3)), False, "via void")
    res = mechanisms_from_trajectory(traj, sites, "Li", min_residence_ps=0.1, window_ps=0.5)
    assert res.counts == {"interstitialcy": 0, "direct_interstitial": 0, "vacancy": 1, "frenkel_formation": 0,
                          "recombination": 0}
    assert res.n_hops == 4 and [(h.hop_class.label, h.count) for h in res.hop_classes] == [("Li(1)-i(1) 1.75 Å", 4)]
