"""Symmetry-distinct sites of a crystal, labelled from spglib's Wyckoff positions.

Every atom of a periodic structure belongs to one crystallographic orbit (a set of
atoms related by the space group). An orbit is labelled twice:

* by its Wyckoff position, multiplicity and letter in the conventional cell of the
  space group, e.g. ``2c``;
* by species and a running number, ``Li(1)``, ``Li(2)``, ... Orbits of one species
  are numbered in the order of their Wyckoff letters (ties by first atom index), so
  that the labels do not depend on the order of the atoms in the input file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ionmd.errors import InputError

if TYPE_CHECKING:
    from ase import Atoms


@dataclass(frozen=True)
class SymmetrySite:
    """One crystallographic orbit of a structure.

    Attributes
    ----------
    species : str
        Chemical symbol of the atoms of the orbit.
    label : str
        ``SPECIES(n)``, e.g. ``Li(2)``.
    wyckoff : str
        Multiplicity and Wyckoff letter in the conventional cell, e.g. ``2c``.
    indices : tuple of int
        Indices of the atoms of the orbit in the structure.
    """

    species: str
    label: str
    wyckoff: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class SymmetryInfo:
    """Space group and orbits of a structure (see :func:`symmetry_sites`)."""

    spacegroup: str
    number: int
    sites: tuple[SymmetrySite, ...]

    def site_of(self, index: int) -> SymmetrySite:
        """Return the orbit that holds atom ``index``."""
        for site in self.sites:
            if index in site.indices:
                return site
        raise InputError(f"atom index {index} is not in the structure")


def orbit_labels(symbols: Sequence[str], wyckoffs: Sequence[str],
                 equivalent_atoms: Sequence[int] | np.ndarray) -> dict[int, str]:
    """The ``SPECIES(n)`` label of each crystallographic orbit (the one numbering rule).

    Orbits of one species are numbered in the order of their Wyckoff letters, ties
    by their first atom index, so that labels do not depend on the atom order.

    Parameters
    ----------
    symbols : sequence of str
        Chemical symbol of every atom.
    wyckoffs : sequence of str
        Wyckoff letter of every atom (spglib's ``wyckoffs``; any placeholder such as
        ``"?"`` when unknown).
    equivalent_atoms : sequence of int
        Representative atom of the orbit of every atom (spglib's ``equivalent_atoms``).

    Returns
    -------
    dict of int to str
        Label of each orbit, keyed by its representative atom.
    """
    orbit_of = np.asarray(equivalent_atoms)
    first = {int(rep): int(np.flatnonzero(orbit_of == rep)[0]) for rep in dict.fromkeys(orbit_of.tolist())}
    count: dict[str, int] = {}
    labels: dict[int, str] = {}
    for rep in sorted(first, key=lambda r: (wyckoffs[r], first[r])):
        species = symbols[rep]
        count[species] = count.get(species, 0) + 1
        labels[rep] = f"{species}({count[species]})"
    return labels


def symmetry_sites(atoms: Atoms, symprec: float = 1e-3) -> SymmetryInfo:
    """Return the space group and the labelled crystallographic orbits of ``atoms``.

    Parameters
    ----------
    atoms : Atoms
        Periodic structure.
    symprec : float
        Distance tolerance of spglib, in Å.

    Returns
    -------
    SymmetryInfo
        Space-group symbol and number, and one :class:`SymmetrySite` per orbit.

    Raises
    ------
    InputError
        If spglib finds no symmetry (e.g. overlapping atoms).
    """
    import spglib

    cell = (np.array(atoms.cell), atoms.get_scaled_positions(wrap=True), atoms.numbers)
    data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if data is None:
        raise InputError(f"spglib found no symmetry for the structure ({atoms.get_chemical_formula()}): "
                         "are two atoms on top of each other?")
    orbit_of = np.asarray(data.equivalent_atoms)
    conv_per_input = abs(np.linalg.det(np.asarray(data.std_lattice))) / abs(atoms.cell.volume)
    symbols = atoms.get_chemical_symbols()
    labels = orbit_labels(symbols, list(data.wyckoffs), orbit_of)
    sites = []
    for rep, label in labels.items():
        members = tuple(int(i) for i in np.flatnonzero(orbit_of == rep))
        mult = int(round(len(members) * conv_per_input))
        sites.append(SymmetrySite(species=symbols[rep], label=label,
                                  wyckoff=f"{mult}{data.wyckoffs[rep]}", indices=members))
    sites.sort(key=lambda s: s.indices[0])
    return SymmetryInfo(spacegroup=str(data.international), number=int(data.number),
                        sites=tuple(sites))
