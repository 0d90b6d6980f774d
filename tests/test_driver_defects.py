"""Tests of generic defect making (ionmd.driver.defects, ionmd.symmetry) on non-LiF lattices."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import read, write

from ionmd.driver.defects import (
    apply_defects,
    largest_voids,
    min_length_repeats,
    perpendicular_widths_A,
)
from ionmd.driver.structure import build_structure, make_structure
from ionmd.errors import InputError
from ionmd.symmetry import symmetry_sites

A_LI3N, C_LI3N = 3.65, 3.88


def li3n() -> Atoms:
    """alpha-Li3N-like P6/mmm cell: N at 1a, Li(1) at 1b, Li(2) at 2c (atoms deliberately shuffled)."""
    cell = [[A_LI3N, 0, 0], [-A_LI3N / 2, A_LI3N * np.sqrt(3) / 2, 0], [0, 0, C_LI3N]]
    frac = [[2 / 3, 1 / 3, 0], [0, 0, 0.5], [0, 0, 0], [1 / 3, 2 / 3, 0]]
    return Atoms("LiLiNLi", scaled_positions=frac, cell=cell, pbc=True)


def _frac_in_unit(rec, reps):
    return np.mod(np.asarray(rec.frac) * np.asarray(reps), 1.0)


def _same_frac(a, b) -> bool:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return bool(np.allclose(d - np.round(d), 0.0, atol=1e-6))


def test_li3n_orbits_are_labelled_by_wyckoff_position():
    info = symmetry_sites(li3n())
    assert info.spacegroup == "P6/mmm"
    by_label = {s.label: s for s in info.sites}
    assert by_label["Li(1)"].wyckoff == "1b" and by_label["Li(1)"].indices == (1,)
    assert by_label["Li(2)"].wyckoff == "2c" and by_label["Li(2)"].indices == (0, 3)
    assert by_label["N(1)"].wyckoff == "1a"
    # A supercell keeps the Wyckoff multiplicities of the conventional cell.
    sites = symmetry_sites(li3n().repeat((2, 2, 2))).sites
    assert sorted((s.label, s.wyckoff, len(s.indices)) for s in sites) == [
        ("Li(1)", "1b", 8), ("Li(2)", "2c", 16), ("N(1)", "1a", 8)]


@pytest.mark.parametrize("spec", ["Li@2c", "Li@c", "Li(2)"])
def test_vacancy_on_li3n_2c_site(spec):
    reps = (2, 2, 2)
    perfect = li3n().repeat(reps)
    out, (rec,) = apply_defects(perfect, reps, vacancies=[spec], seed=4)
    assert len(out) == len(perfect) - 1
    assert (rec.kind, rec.species, rec.site, rec.wyckoff) == ("vacancy", "Li", "Li(2)", "2c")
    u = _frac_in_unit(rec, reps)
    assert u[2] == pytest.approx(0.0, abs=1e-9)          # in the Li2N plane
    assert any(_same_frac(u, s) for s in ([1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0]))
    # The record points at the removed atom of the perfect supercell ...
    assert np.allclose(perfect.positions[rec.index], rec.cart_A)
    # ... which is no longer there; every other atom is.
    from ase.geometry import get_distances

    _, d = get_distances(np.array([rec.cart_A]), out.positions, cell=out.cell, pbc=True)
    assert d.min() > 1.5
    # In-plane Li(2)-Li(2) neighbours are a/sqrt(3) away.
    assert rec.nearest_A == pytest.approx(A_LI3N / np.sqrt(3), abs=1e-6)


@pytest.mark.parametrize("spec", ["Li@1b", "Li@b", "Li(1)"])
def test_vacancy_on_li3n_1b_site(spec):
    reps = (2, 2, 1)
    out, (rec,) = apply_defects(li3n().repeat(reps), reps, vacancies=[spec], seed=1)
    assert (rec.site, rec.wyckoff) == ("Li(1)", "1b")
    u = _frac_in_unit(rec, reps)
    assert _same_frac(u, [0, 0, 0.5])
    assert out.get_chemical_symbols().count("Li") == 11


def test_vacancy_by_index_and_by_fractional_position():
    reps = (1, 1, 2)
    perfect = li3n().repeat(reps)
    _, (rec,) = apply_defects(perfect, reps, vacancies=["5"])
    assert rec.index == 5 and rec.species == perfect.get_chemical_symbols()[5]
    assert rec.site == "Li(1)"  # index 5 = index 1 of the second unit cell
    # Fractional position of the unit cell, slightly off: the nearest Li is taken.
    _, (rec,) = apply_defects(perfect, reps, vacancies=["Li@0.34,0.66,0.02"])
    assert rec.site == "Li(2)" and rec.index == 3
    with pytest.raises(InputError, match="no N atom within 0.5 Å"):
        apply_defects(perfect, reps, vacancies=["N@0.5,0.5,0.5"])
    with pytest.raises(InputError, match=r"Li sites of P6/mmm: .*Li\(1\) \(1b\), Li\(2\) \(2c\)"):
        apply_defects(perfect, reps, vacancies=["Li@1a"])


def test_seeded_choice_is_reproducible_and_spans_the_site():
    reps = (3, 3, 1)
    perfect = li3n().repeat(reps)
    picks = {apply_defects(perfect, reps, vacancies=["Li(2)"], seed=s)[1][0].index
             for s in range(12)}
    assert len(picks) > 3
    info = symmetry_sites(perfect)
    li2 = next(s for s in info.sites if s.label == "Li(2)")
    assert picks <= set(li2.indices)
    one = apply_defects(perfect, reps, vacancies=["Li(2)"], seed=7)[1][0]
    two = apply_defects(perfect, reps, vacancies=["Li(2)"], seed=7)[1][0]
    assert one == two


def test_cif_to_data_file_reports_the_vacancy(tmp_path):
    cif = tmp_path / "li3n.cif"
    write(cif, li3n())
    out = tmp_path / "li3n.data"
    result = make_structure(out, source=cif, supercell="2x2x2", remove=["Li@2c"], seed=3)
    assert result.counts == {"Li": 23, "N": 8}
    side = json.loads((tmp_path / "li3n.data.json").read_text())
    (rec,) = side["defect_sites"]
    assert rec["site"] == "Li(2)" and rec["wyckoff"] == "2c" and rec["kind"] == "vacancy"
    header = [line for line in out.read_text().splitlines() if line.startswith("# defect:")]
    assert len(header) == 1 and "Li(2) 2c" in header[0]
    # The reported Cartesian position (LAMMPS frame of the written file) is a Li site that
    # is now empty: its Li(2) neighbours sit at a/sqrt(3).
    atoms = read(out, format="lammps-data", atom_style="atomic")
    from ase.geometry import get_distances

    _, d = get_distances(np.array([rec["cart_A"]]), atoms.positions, cell=atoms.cell, pbc=True)
    assert d.min() == pytest.approx(A_LI3N / np.sqrt(3), abs=1e-5)
    frac = np.asarray(rec["frac"])
    assert np.allclose(frac @ np.asarray(result.cell_A), rec["cart_A"], atol=1e-8)


def test_lammps_data_file_as_source(tmp_path):
    first = tmp_path / "li3n.data"
    make_structure(first, source=_cif(tmp_path), types=["N", "Li"])
    again = build_structure(first, supercell=2)
    assert sorted(again.get_chemical_symbols()) == sorted(li3n().repeat(2).get_chemical_symbols())
    assert symmetry_sites(again).spacegroup == "P6/mmm"


def _cif(tmp_path):
    cif = tmp_path / "li3n.cif"
    write(cif, li3n())
    return cif


def test_junk_cif_error_names_file_and_reason(tmp_path):
    junk = tmp_path / "junk.cif"
    junk.write_text("data_x\n_cell_length_a 3\nnot a loop at all\n")
    with pytest.raises(InputError) as err:
        build_structure(junk)
    text = str(err.value)
    assert "junk.cif" in text
    reason = text.split("junk.cif':", 1)[1].strip()
    assert reason, text
    # A reader failing without a message still gives a reason.
    binary = tmp_path / "binary.cif"
    binary.write_bytes(b"\x00\x01garbage\n")
    with pytest.raises(InputError, match=r"'.*binary.cif': it is not a valid CIF file \(ASE's"):
        build_structure(binary)


def test_default_calculator_without_chgnet_is_flagged(tmp_path):
    pytest.importorskip("ase")
    try:
        import chgnet  # noqa: F401
        pytest.skip("CHGNet is installed: the default MD calculator exists")
    except ImportError:
        pass
    from ionmd.models.sampling import SamplePlan, sample_structure

    cif = _cif(tmp_path)
    result = sample_structure(tmp_path / "f.extxyz", cif, plan=SamplePlan(n_rattle=1, n_short=0),
                              vacancies=[], interstitials=[])
    assert result.calculator is None and "md" not in result.counts
    assert any("CHGNet" in f and f.startswith("no_md") for f in result.flags)


def _brute_min_repeats(cell, length):
    best = None
    for reps in itertools.product(range(1, 9), repeat=3):
        w = perpendicular_widths_A(np.asarray(cell) * np.asarray(reps)[:, None])
        if np.all(w >= length - 1e-9):
            if best is None or np.prod(reps) < np.prod(best) or \
                    (np.prod(reps) == np.prod(best) and sum(reps) < sum(best)):
                best = reps
    return best


@pytest.mark.parametrize("length", [8.0, 10.0, 13.7])
def test_min_length_supercell_on_a_triclinic_cell(length):
    cell = np.array([[3.1, 0.0, 0.0], [1.4, 3.6, 0.0], [-0.9, 1.1, 4.4]])
    reps = min_length_repeats(cell, length)
    widths = perpendicular_widths_A(cell * np.asarray(reps)[:, None])
    assert np.all(widths >= length)
    # Each repeat is the smallest: one fewer along any axis is too thin.
    for i in range(3):
        if reps[i] > 1:
            less = list(reps)
            less[i] -= 1
            assert perpendicular_widths_A(cell * np.asarray(less)[:, None])[i] < length
    assert tuple(reps) == _brute_min_repeats(cell, length)
    # Vector lengths would not do: the widths are shorter than |a|, |b|, |c| here.
    assert np.any(perpendicular_widths_A(cell) < np.linalg.norm(cell, axis=1) - 0.1)


def test_min_length_in_make_structure(tmp_path):
    result = make_structure(tmp_path / "x.data", source=_cif(tmp_path), min_length_A=10.0)
    # Hexagonal widths: a*sqrt(3)/2 = 3.161 Å in-plane (4 repeats), c = 3.88 Å (3 repeats).
    assert result.supercell == [4, 4, 3]
    assert result.n_atoms == 4 * 48


@pytest.mark.parametrize(
    ("atoms", "radius", "n_voids", "site"),
    [
        # rock salt: the tetrahedral sites, sqrt(3)/4 a from 4 cations and 4 anions
        (bulk("NaCl", "rocksalt", a=5.64, cubic=True), np.sqrt(3) / 4 * 5.64, 8,
         [0.25, 0.25, 0.25]),
        # fcc: the octahedral sites, a/2 (the tetrahedral ones are sqrt(3)/4 a)
        (bulk("Cu", "fcc", a=3.61, cubic=True), 3.61 / 2, 4, [0.5, 0.0, 0.0]),
        # bcc: the distorted tetrahedral sites (1/2, 1/4, 0), sqrt(5)/4 a (octahedral: a/2)
        (bulk("Fe", "bcc", a=2.87, cubic=True), np.sqrt(5) / 4 * 2.87, 12, [0.5, 0.25, 0.0]),
        # one-atom primitive fcc cell: one octahedral void per atom
        (bulk("Cu", "fcc", a=3.61), 3.61 / 2, 1, None),
    ],
    ids=["rocksalt", "fcc", "bcc", "fcc_primitive"],
)
def test_largest_voids_of_known_lattices(atoms, radius, n_voids, site):
    frac, r = largest_voids(atoms)
    assert r == pytest.approx(radius, abs=1e-6)
    assert len(frac) == n_voids
    if site is not None:
        assert any(_same_frac(f, site) for f in frac)


def test_interstitial_goes_to_the_largest_void_not_to_a_vacancy():
    reps = (2, 2, 2)
    perfect = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
    out, (vac, inter) = apply_defects(perfect, reps, vacancies=["Cu"], interstitials=["Cu"],
                                      seed=0)
    assert inter.kind == "interstitial" and inter.site == "void" and inter.index == len(out) - 1
    assert inter.nearest_A == pytest.approx(3.61 / 2, abs=1e-6)
    assert np.allclose(out.positions[-1], inter.cart_A)
    assert np.linalg.norm(np.asarray(inter.cart_A) - vac.cart_A) > 0.5
    # Two interstitials take two different voids.
    out2, recs = apply_defects(perfect, reps, interstitials=["Cu@void", "Cu@void"], seed=1)
    assert np.linalg.norm(np.subtract(recs[0].cart_A, recs[1].cart_A)) > 1.0
    assert len(out2) == len(perfect) + 2


def test_cli_reports_the_removed_atom(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo / "python") + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "v.data"
    cmd = [sys.executable, "-m", "ionmd.driver", "structure", str(_cif(tmp_path)), "-o", str(out),
           "--min-length", "7", "--vacancy", "Li(1)", "--interstitial", "Li"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "defect: vacancy Li at Li(1) 1b, index" in proc.stdout
    assert "defect: interstitial Li at void" in proc.stdout
    assert json.loads((tmp_path / "v.data.json").read_text())["supercell"] == [3, 3, 2]


def test_nearest_atom_distance_matches_ase_on_a_skewed_cell():
    from ase.geometry import get_distances

    from ionmd.driver.defects import _nearest_A

    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 1, 3))
    atoms.set_cell(atoms.cell @ np.array([[1, 0.3, 0], [0, 1, 0.4], [0.2, 0, 1]]),
                   scale_atoms=True)
    points = np.random.default_rng(0).uniform(-5, 15, (200, 3))
    _, d = get_distances(points, atoms.positions, cell=atoms.cell, pbc=True)
    assert np.allclose(_nearest_A(atoms, points), d.min(axis=1), atol=1e-10)
