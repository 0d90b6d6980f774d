"""The final NEB end point relaxes on the relaxed initial's host (ionmd.neb.structures.on_relaxed_host)."""

import numpy as np
from ase import Atoms

from ionmd.neb.structures import on_relaxed_host


def _pair() -> tuple[Atoms, Atoms]:
    cell = np.diag([6.0, 6.0, 6.0])
    pos = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [5.9, 5.9, 5.9]])
    initial = Atoms("Cu4", positions=pos, cell=cell, pbc=True)
    final = initial.copy()
    final.positions[1] = [4.0, 0.0, 0.0]  # the hopping atom
    final.positions[3] = [-0.1, -0.1, -0.1]  # the same atom as in initial, another periodic image
    return initial, final


def test_host_atoms_take_the_relaxed_initial_positions_and_the_hopping_atom_keeps_its_end():
    initial, final = _pair()
    relaxed = initial.copy()
    relaxed.positions += np.array([[0.0, 0.0, 0.3], [0.1, 0.0, 0.0], [0.0, 0.0, -0.3], [0.05, 0.0, 0.0]])
    start = on_relaxed_host(initial, final, relaxed)
    # host atoms 0, 2 and 3 (3 across the boundary) come from the relaxed initial: a buckling kept
    np.testing.assert_allclose(start.positions[[0, 2, 3]], relaxed.positions[[0, 2, 3]])
    # the hopping atom stays on its end site, not where the initial relaxed it
    np.testing.assert_allclose(start.positions[1], [4.0, 0.0, 0.0])
    # inputs untouched
    np.testing.assert_allclose(final.positions[1], [4.0, 0.0, 0.0])
    assert start.calc is None
