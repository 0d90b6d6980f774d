"""The synthetic hop lattice: neighbour vectors of any Bravais sublattice, its exact D, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.spacegroup import crystal

from ionmd.analysis.synthetic import HopLattice
from ionmd.examples.lif.constants import LIF_A_ANGSTROM
from ionmd.examples.lif.structure import unit_cell


def test_rocksalt_and_bcc_neighbour_vectors():
    lif = HopLattice.of(unit_cell(), "Li", (2, 2, 2))
    assert len(lif.hop_vectors_A) == 12 and len(lif.mobile_indices) == 32 and len(lif.atoms) == 64
    np.testing.assert_allclose(np.linalg.norm(lif.hop_vectors_A, axis=1), LIF_A_ANGSTROM / np.sqrt(2))
    assert lif.D_A2_ps(1.0) == pytest.approx(LIF_A_ANGSTROM**2 / 12)
    bcc = HopLattice.of(bulk("Fe", "bcc", a=2.87, cubic=True), "Fe", (3, 3, 3))
    assert len(bcc.hop_vectors_A) == 8
    np.testing.assert_allclose(np.abs(bcc.hop_vectors_A), 2.87 / 2)


def test_walk_has_the_exact_D():
    lat = HopLattice.of(bulk("Fe", "bcc", a=2.87, cubic=True), "Fe", (2, 2, 2))
    rng = np.random.default_rng(7)
    pos = np.concatenate([lat.walk(2000, 0.2, rng) for _ in range(20)], axis=1)  # 320 ions
    lag = 100
    msd = np.mean(np.sum((pos[lag:] - pos[:-lag]) ** 2, axis=2))
    D = msd / (6 * lag)  # per frame interval
    assert D == pytest.approx(lat.D_A2_ps(0.2), rel=0.03)


def test_not_bravais_or_absent_species_is_refused():
    honeycomb = crystal(["N", "Li", "Li"], basis=[(0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)], spacegroup=191,
                        cellpar=[3.65, 3.65, 3.87, 90, 90, 120])
    with pytest.raises(ValueError, match="not a Bravais sublattice"):
        HopLattice.of(honeycomb, "Li", (2, 2, 2))
    with pytest.raises(ValueError, match="has no Na atom"):
        HopLattice.of(unit_cell(), "Na")


def test_a_supercell_with_one_mobile_atom_is_refused():
    """One mobile atom has no neighbour to hop to: a clear error, not 0 hop vectors and D = nan."""
    bcc_primitive = bulk("Fe", "bcc", a=2.87)  # one atom per cell
    with pytest.raises(ValueError, match=r"supercell \(1, 1, 1\) of Fe has a single Fe atom.*larger repeat"):
        HopLattice.of(bcc_primitive, "Fe", (1, 1, 1))
    # A larger repeat gives the 8 bcc neighbours at a*sqrt(3)/2: D = rate * (3 a^2 / 4) / 6.
    lat = HopLattice.of(bcc_primitive, "Fe", (3, 3, 3))
    assert len(lat.hop_vectors_A) == 8
    assert lat.D_A2_ps(1.0) == pytest.approx(0.75 * 2.87**2 / 6)
