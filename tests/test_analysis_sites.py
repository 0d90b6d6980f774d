"""Sites for any lattice: Wyckoff-labelled sublattices, vacancies filled in, voids, symmetry.

Structures are built here from their Wyckoff positions with ASE: an alpha-Li3N-like
hexagonal cell (P6/mmm, N 1a, Li 1b, Li 2c), rock-salt (Fm-3m) and a rock-salt with
two mobile species ordered in layers.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.spacegroup import crystal

from ionmd.analysis.sites import find_sites, parse_fractional_sites, read_perfect
from ionmd.errors import InputError
from ionmd.lammpsio.datafile import ReferenceStructure

A_HEX, C_HEX = 3.65, 3.87  # Å, Li3N-like


def li3n_cell() -> Atoms:
    return crystal(["N", "Li", "Li"], basis=[(0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)], spacegroup=191,
                   cellpar=[A_HEX, A_HEX, C_HEX, 90, 90, 120])


def as_reference(atoms: Atoms) -> ReferenceStructure:
    sym = atoms.get_chemical_symbols()
    names = sorted(set(sym))
    return ReferenceStructure(np.asarray(atoms.cell[:]), np.zeros(3), atoms.positions.copy(),
                              np.array([names.index(s) + 1 for s in sym]), sym,
                              {k + 1: s for k, s in enumerate(names)}, "test")


def li3n_with_vacancy(reps=(3, 3, 2), remove: int = 4) -> tuple[Atoms, np.ndarray]:
    """Supercell with the ``remove``-th Li(2) (z = 0 layer) taken out; returns it and the vacant position."""
    sc = li3n_cell().repeat(reps)
    frac = sc.get_scaled_positions()
    in_layer = np.abs(np.round(frac[:, 2] * reps[2]) - frac[:, 2] * reps[2]) < 1e-6  # the z = 0 planes
    li2 = [i for i, s in enumerate(sc.get_chemical_symbols()) if s == "Li" and in_layer[i]]
    vac = frac[li2[remove]].copy()
    del sc[li2[remove]]
    return sc, vac


def test_hexagonal_sublattices_wyckoff_and_vacancy_filled_in():
    sc, vac = li3n_with_vacancy()
    s = find_sites(as_reference(sc), ["Li"], interstitial_frac=np.zeros((0, 3)))
    assert s.symmetry.spacegroup == "P6/mmm"
    np.testing.assert_allclose(np.abs(s.symmetry.unique_axis), [0, 0, 1], atol=1e-9)
    subs = {x.label: x for x in s.sublattices}
    assert set(subs) == {"Li(1)", "Li(2)"}
    assert (subs["Li(1)"].wyckoff, subs["Li(1)"].n_sites, subs["Li(1)"].n_occupied) == ("b", 18, 18)
    assert (subs["Li(2)"].wyckoff, subs["Li(2)"].n_sites, subs["Li(2)"].n_occupied) == ("c", 36, 35)
    assert s.n_lattice == 54 and s.n_interstitial == 0 and s.n_vacancies == 1
    # the vacant site is the removed Li(2) position
    empty = s.frac[(s.kind == "L") & ~s.occupied]
    d = empty[0] - vac
    d -= np.round(d)
    assert np.linalg.norm(d @ sc.cell[:]) < 1e-6
    assert s.labels()[(s.kind == "L") & ~s.occupied][0] == "Li(2)"


def test_hexagonal_voids_are_symmetric_interstitial_sublattices():
    sc, _ = li3n_with_vacancy()
    s = find_sites(as_reference(sc), ["Li"])
    inter = [x for x in s.sublattices if x.kind == "I"]
    assert inter and all(x.label.startswith("i(") and x.wyckoff != "?" for x in inter)
    # each interstitial sublattice is a whole orbit: it keeps all 24 point operations
    assert len(s.symmetry.rot_cart) == 24
    # the 2d void (1/3, 2/3, 1/2) of the unit cell, above a Li(2) site between the layers, is found
    d2 = [x for x in inter if x.wyckoff == "d"]
    assert d2 and d2[0].n_sites == 2 * 18
    assert np.min(np.linalg.norm((s.frac[s.kind == "I"][:, None] - s.frac[s.kind == "L"][None]
                                  - np.round(s.frac[s.kind == "I"][:, None] - s.frac[s.kind == "L"][None]))
                                 @ sc.cell[:], axis=2)) >= 1.0


def test_perfect_cell_given_as_unit_cell_file(tmp_path):
    sc, _ = li3n_with_vacancy()
    sc.translate(sc.cell[:].sum(axis=0) * 0.01)  # a shifted origin must not matter
    unit = tmp_path / "li3n.cif"
    li3n_cell().write(unit)
    s = find_sites(as_reference(sc), ["Li"], interstitial_frac=np.zeros((0, 3)), perfect=read_perfect(unit))
    assert s.n_lattice == 54 and s.n_vacancies == 1
    assert [x.label for x in s.sublattices] == ["Li(1)", "Li(2)"]
    bad = Atoms("NLi3", scaled_positions=li3n_cell().get_scaled_positions(), cell=[3.7, 3.7, 3.9], pbc=True)
    with pytest.raises(InputError, match="does not tile the reference cell"):
        find_sites(as_reference(sc), ["Li"], perfect=as_reference(bad))


def test_rocksalt_one_sublattice_octahedral_and_tetrahedral_voids():
    nacl = crystal(["Li", "F"], basis=[(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225, cellpar=[4.03] * 3 + [90] * 3)
    sc = nacl.repeat(2)
    s = find_sites(as_reference(sc), ["Li"])
    assert s.symmetry.spacegroup == "Fm-3m" and s.symmetry.unique_axis is None
    lat = [x for x in s.sublattices if x.kind == "L"]
    inter = [x for x in s.sublattices if x.kind == "I"]
    assert [(x.label, x.wyckoff, x.n_sites) for x in lat] == [("Li(1)", "a", 32)]
    assert [(x.wyckoff, x.n_sites) for x in inter] == [("c", 64)]
    assert len(s.symmetry.rot_cart) == 48


def test_two_mobile_species_are_separate_sublattices():
    """Rock-salt with Li and Na ordered in alternating (001) cation layers; both mobile."""
    nacl = crystal(["Li", "F"], basis=[(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                   cellpar=[4.2] * 3 + [90] * 3).repeat((2, 2, 2))
    sym = nacl.get_chemical_symbols()
    z = nacl.get_scaled_positions()[:, 2]
    sym = ["Na" if s == "Li" and abs((z[i] * 4) % 2 - 1) < 1e-6 else s for i, s in enumerate(sym)]
    nacl.set_chemical_symbols(sym)
    na = [i for i, s in enumerate(sym) if s == "Na"]
    del nacl[na[3]]  # a Na vacancy
    s = find_sites(as_reference(nacl), ["Li", "Na"], interstitial_frac=np.zeros((0, 3)))
    subs = {x.label: x for x in s.sublattices}
    assert set(subs) == {"Li(1)", "Na(1)"}
    assert (subs["Li(1)"].n_sites, subs["Li(1)"].n_occupied) == (16, 16)
    assert (subs["Na(1)"].n_sites, subs["Na(1)"].n_occupied) == (16, 15)
    assert s.symmetry.spacegroup == "P4/mmm"
    np.testing.assert_allclose(np.abs(s.symmetry.unique_axis), [0, 0, 1], atol=1e-9)


def test_interstitial_options():
    sc, _ = li3n_with_vacancy()
    ref = as_reference(sc)
    assert parse_fractional_sites("").shape == (0, 3)
    s = find_sites(ref, ["Li"], interstitial_frac=parse_fractional_sites(""))
    assert s.n_interstitial == 0 and s.n_vacancies == 1
    given = parse_fractional_sites("0.111111,0.222222,0.25")  # a 2d void of the supercell
    s = find_sites(ref, ["Li"], interstitial_frac=given)
    assert s.n_interstitial == 1 and s.n_lattice == 54 and s.n_vacancies == 1
    with pytest.raises(InputError, match="no atom of species"):
        find_sites(ref, ["Na"])


def test_all_atoms_mobile_vacancy_filled_in_by_lattice_translations():
    """fcc metal with a vacancy, every atom mobile (no framework): translations restore the site."""
    from ase.build import bulk

    sc = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    del sc[7]
    s = find_sites(as_reference(sc), ["Cu"])
    assert s.symmetry.spacegroup == "Fm-3m"
    subs = [(x.label, x.kind, x.wyckoff, x.n_sites, x.n_occupied) for x in s.sublattices]
    assert subs == [("Cu(1)", "L", "a", 108, 107), ("i(1)", "I", "b", 108, 0), ("i(2)", "I", "c", 216, 0)]


def test_relaxed_and_vibrating_defective_reference():
    """Neighbours of the vacancy relaxed by 0.2 Å and every atom displaced (0.05 Å rms per axis):
    the translation-averaged perfect cell still has the space group, the sublattices and the vacancy."""
    rng = np.random.default_rng(0)
    sc, vac = li3n_with_vacancy()
    d = sc.get_scaled_positions() - vac
    d -= np.round(d)
    d = d @ sc.cell[:]
    dist = np.linalg.norm(d, axis=1)
    near = dist < 3.0
    pos = sc.positions + rng.normal(0, 0.05, (len(sc), 3))
    pos[near] -= 0.2 * d[near] / dist[near, None]  # towards the vacancy
    sc.positions = pos
    s = find_sites(as_reference(sc), ["Li"], interstitial_frac=np.zeros((0, 3)))
    assert s.symmetry.spacegroup == "P6/mmm"
    assert [(x.label, x.wyckoff, x.n_sites, x.n_occupied) for x in s.sublattices] == [
        ("Li(1)", "b", 18, 18), ("Li(2)", "c", 36, 35)]
    empty = s.frac[(s.kind == "L") & ~s.occupied][0] - vac
    empty -= np.round(empty)
    assert np.linalg.norm(empty @ sc.cell[:]) < 0.05  # the clean vacant site, not a displaced neighbour


def test_sublattice_labels_are_those_of_ionmd_symmetry():
    """find_sites and ionmd.symmetry.symmetry_sites label the same orbits the same way.

    The Li 2c orbit is listed first and the atoms are shuffled, so the labels follow
    the Wyckoff letters (b before c), not the input order.
    """
    from ionmd.symmetry import symmetry_sites

    cell = crystal(["N", "Li", "Li"], basis=[(0, 0, 0), (1 / 3, 2 / 3, 0), (0, 0, 0.5)], spacegroup=191,
                   cellpar=[A_HEX, A_HEX, C_HEX, 90, 90, 120]).repeat((2, 2, 1))
    perm = np.random.default_rng(3).permutation(len(cell))
    sc = cell[perm]
    info = symmetry_sites(sc)
    s = find_sites(as_reference(sc), ["Li"], interstitial_frac=np.zeros((0, 3)))
    got = {x.label: (x.wyckoff, x.n_sites) for x in s.sublattices}
    want = {x.label: (x.wyckoff.lstrip("0123456789"), len(x.indices)) for x in info.sites if x.species == "Li"}
    assert got == want == {"Li(1)": ("b", 4), "Li(2)": ("c", 8)}
