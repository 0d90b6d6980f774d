"""One hop-class rule for MD and NEB: ionmd.symmetry.HopOrbits behind HopClassifier and group_hops.

Structures are built here from Wyckoff positions with ASE (an alpha-Li3N-like hexagonal
cell, a rock-salt cell, and a monoclinic cell with two mobile species); every hop between
lattice sites up to a cutoff is classified by the MD analysis (site indices) and grouped
by the NEB (fractional positions), and both must give the same partition.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.spacegroup import crystal

from ionmd.analysis.hops import HopClassifier
from ionmd.analysis.sites import find_sites
from ionmd.lammpsio.datafile import ReferenceStructure
from ionmd.neb.hops import group_hops
from ionmd.symmetry import HopOrbits, SpaceGroupOps


def _reference(atoms) -> ReferenceStructure:
    sym = atoms.get_chemical_symbols()
    names = sorted(set(sym))
    return ReferenceStructure(np.asarray(atoms.cell[:]), np.zeros(3), atoms.positions.copy(),
                              np.array([names.index(s) + 1 for s in sym]), sym,
                              {k + 1: s for k, s in enumerate(names)}, "test")


def hexagonal():
    return crystal(["N", "Li", "Li"], basis=[(0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)], spacegroup=191,
                   cellpar=[3.65, 3.65, 3.87, 90, 90, 120]).repeat((2, 2, 2)), ["Li"], 3.0


def rocksalt():
    return crystal(["Na", "Cl"], basis=[(0, 0, 0), (0.5, 0.5, 0.5)], spacegroup=225,
                   cellpar=[5.0, 5.0, 5.0, 90, 90, 90]).repeat((2, 2, 2)), ["Na"], 5.2


def monoclinic():
    return crystal(["O", "Na", "K"], basis=[(0.1, 0.2, 0.3), (0.0, 0.5, 0.5), (0.5, 0.0, 0.0)], spacegroup=10,
                   cellpar=[4.1, 4.6, 5.2, 90, 103, 90]).repeat((2, 2, 2)), ["Na", "K"], 4.8


def _pairs(sites, cutoff_A):
    clf = HopClassifier(sites)
    pairs = [(i, j) for i in range(len(sites.frac)) for j in range(len(sites.frac))
             if i != j and np.linalg.norm(clf.vector_A(i, j)) < cutoff_A]
    return clf, pairs


@pytest.mark.parametrize("build", [hexagonal, rocksalt, monoclinic])
def test_md_classes_and_neb_types_are_the_same_partition(build):
    atoms, mobile, cutoff = build()
    sites = find_sites(_reference(atoms), mobile, interstitial_frac=np.zeros((0, 3)))
    clf, pairs = _pairs(sites, cutoff)
    md = [clf.classify(i, j) for i, j in pairs]
    hops = [(sites.frac[i], sites.frac[i] + np.linalg.solve(sites.cell_A.T, clf.vector_A(i, j)))
            for i, j in pairs]
    neb = np.empty(len(pairs), dtype=int)
    for t in group_hops(atoms, hops):
        neb[t.members] = t.index
    assert len(set(md)) == len(set(neb.tolist())) > 1
    assert len(set(zip(md, neb.tolist(), strict=True))) == len(set(md))  # a bijection of classes
    # a hop and its reverse are one class
    assert all(clf.classify(j, i) == c for (i, j), c in zip(pairs, md, strict=True))


def test_hexagonal_classes_known():
    """Li3N-like: in-plane Li(2)-Li(2) 2.11 Å and Li(1)-Li(2) 2.86 Å at 47° to c, nothing else below 3 Å."""
    atoms, mobile, cutoff = hexagonal()
    sites = find_sites(_reference(atoms), mobile, interstitial_frac=np.zeros((0, 3)))
    clf, pairs = _pairs(sites, cutoff)
    for i, j in pairs:
        clf.classify(i, j)
    labels = sorted(c.label for c in clf.classes)
    assert labels == ["Li(1)-Li(2) 2.86 Å 47° to c", "Li(2)-Li(2) 2.11 Å in-plane"]


def test_hop_orbits_rule_on_a_square_lattice():
    """A rectangular 2D-like cell (a != b): hops along a and along b are two classes, ±a one."""
    cell = np.diag([3.0, 4.0, 10.0])
    mirror = [np.diag(d) for d in ([1, 1, 1], [-1, 1, 1], [1, -1, 1], [-1, -1, 1])]
    ops = SpaceGroupOps.factor(mirror, np.zeros((4, 3)), cell,
                               lattice_translations=[[0.5, 0, 0], [0, 0.5, 0], [0.5, 0.5, 0]])
    assert len(ops) == 16 and len(ops.lattice_translations) == 4
    orbits = HopOrbits(ops, start_tol_A=0.1, vector_tol_A=0.1)
    assert orbits.add([0, 0, 0], [0.5, 0, 0]) == (0, True)
    assert orbits.add([0.5, 0.5, 0], [-0.5, 0, 0]) == (0, False)   # mirror image, translated
    assert orbits.add([0, 0, 0], [0, 0.5, 0]) == (1, True)         # along b: another class
    assert orbits.find([0.25, 0, 0], [0.5, 0, 0]) == -1            # a start that is no site image
    assert orbits.find([0.5, 0.0, 0], [-0.5, 0, 0]) == 0           # the reverse of hop 0
    ident = SpaceGroupOps.identity(cell)
    lone = HopOrbits(ident, start_tol_A=0.1, vector_tol_A=0.1)
    lone.add([0, 0, 0], [0.5, 0, 0])
    assert lone.find([0, 0, 0], [-0.5, 0, 0]) == -1 and lone.find([0.5, 0, 0], [-0.5, 0, 0]) == 0
    np.testing.assert_allclose(ops.rot_cart[1], np.diag([-1, 1, 1]))
