"""Constants of the LiF example, defined once."""

from __future__ import annotations

#: Rock-salt LiF lattice constant used by the training data, the bundled models and the demo (Å).
LIF_A_ANGSTROM = 4.03

#: Species of the bundled LiF models, in LAMMPS type order.
LIF_SPECIES: tuple[str, ...] = ("Li", "F")

#: Formal charges used for the Nernst-Einstein conductivity (e).
LIF_CHARGES_E: dict[str, float] = {"Li": 1.0, "F": -1.0}
