"""The built-in LiF structure: the conventional rock-salt cell and its named interstitial sites."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.examples.lif.constants import LIF_A_ANGSTROM

#: One-line description of the built-in structure.
DESCRIPTION = "LiF rock salt"

#: Named interstitial sites (fractional, conventional cell): the tetrahedral sites at the
#: centres of the eight small cubes, which are also the largest voids of rock salt.
NAMED_SITES: dict[str, np.ndarray] = {
    "tetrahedral": np.array(
        [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
    ),
}


def unit_cell(a_A: float | None = None) -> Atoms:
    """Return the 8-atom conventional rock-salt LiF cell (lattice constant ``a_A``, Å)."""
    a_A = LIF_A_ANGSTROM if a_A is None else float(a_A)
    if not np.isfinite(a_A) or a_A <= 0:
        raise InputError(f"lattice constant must be positive, got {a_A} Å")
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    frac = np.vstack([fcc, fcc + [0.5, 0, 0]]) % 1.0
    return Atoms(symbols=["Li"] * 4 + ["F"] * 4, scaled_positions=frac,
                 cell=np.eye(3) * a_A, pbc=True)
