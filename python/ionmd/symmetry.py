"""Symmetry of a crystal: labelled sites (spglib's Wyckoff positions), operations, hop classes.

Hop classes (:class:`HopOrbits`) are the one rule by which both the MD mechanism
analysis (:class:`ionmd.analysis.hops.HopClassifier`) and the NEB hop types
(:func:`ionmd.neb.hops.group_hops`) group hops, so a class means the same in both.

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


# --------------------------------------------------------------------------- operations and hop classes

def mic_frac(d: np.ndarray) -> np.ndarray:
    """Fractional displacements ``d`` reduced to their nearest periodic images (components in [-0.5, 0.5])."""
    return d - np.round(d)


@dataclass(frozen=True)
class SpaceGroupOps:
    """Space-group operations ``x -> R x + t + τ`` in fractional coordinates of ``cell_A``.

    Stored factored: one ``(R, t)`` per distinct rotation part, and the pure lattice
    translations ``τ`` of the structure (a supercell has more than the zero vector).
    Every operation is one of each, so a group of ``n`` rotations and ``m`` translations
    costs ``n + m`` rows, not ``n * m``.

    Attributes
    ----------
    rotations : ndarray (n, 3, 3)
        Rotation parts acting on fractional column vectors.
    translations : ndarray (n, 3)
        The fractional translation that goes with each rotation.
    lattice_translations : ndarray (m, 3)
        Pure translations in [0, 1), the zero vector first.
    cell_A : ndarray (3, 3)
        Cell vectors as rows, Å.
    """

    rotations: np.ndarray
    translations: np.ndarray
    lattice_translations: np.ndarray
    cell_A: np.ndarray

    @classmethod
    def factor(cls, rotations: np.ndarray, translations: np.ndarray, cell_A: np.ndarray,
               lattice_translations: np.ndarray | None = None) -> SpaceGroupOps:
        """Factor a list of operations (spglib's ``rotations``, ``translations``).

        The first operation of each rotation part represents it; the translations of the
        identity rotation are the lattice translations, unless ``lattice_translations`` is
        given (the pure translations known to map the structure onto itself).
        """
        rot = np.asarray(rotations, dtype=float).reshape(-1, 3, 3)
        tra = np.asarray(translations, dtype=float).reshape(-1, 3)
        keys: dict[bytes, int] = {}
        for g, r in enumerate(np.rint(rot).astype(np.int64)):
            keys.setdefault(r.tobytes(), g)
        first = sorted(keys.values())
        if lattice_translations is None:
            ident = np.all(np.abs(rot - np.eye(3)) < 1e-9, axis=(1, 2))
            lattice_translations = tra[ident]
        lat = np.mod(np.vstack([np.zeros((1, 3)), np.asarray(lattice_translations, dtype=float).reshape(-1, 3)]),
                     1.0)
        lat[np.isclose(lat, 1.0, atol=1e-9)] = 0.0
        _, keep = np.unique(np.round(lat * 1e6).astype(np.int64) % 1000000, axis=0, return_index=True)
        return cls(rot[first], tra[first], lat[np.sort(keep)], np.asarray(cell_A, dtype=float))

    @classmethod
    def identity(cls, cell_A: np.ndarray) -> SpaceGroupOps:
        """The trivial group (a structure without symmetry)."""
        return cls(np.eye(3)[None], np.zeros((1, 3)), np.zeros((1, 3)), np.asarray(cell_A, dtype=float))

    @classmethod
    def of_atoms(cls, atoms: Atoms, symprec_A: float = 1e-3) -> SpaceGroupOps:
        """The operations of ``atoms`` (spglib).

        Raises
        ------
        InputError
            spglib finds no operation (overlapping atoms).
        """
        import spglib

        cell = (atoms.cell.array, atoms.get_scaled_positions(wrap=True), atoms.numbers)
        sym = spglib.get_symmetry(cell, symprec=symprec_A)
        if sym is None:
            raise InputError(f"spglib found no symmetry operations for the structure "
                             f"({atoms.get_chemical_formula()}): are two atoms on top of each other?")
        return cls.factor(sym["rotations"], sym["translations"], atoms.cell.array)

    @property
    def rot_cart(self) -> np.ndarray:
        """Row-vector Cartesian maps of the rotation parts: ``v_A -> v_A @ rot_cart[g]``."""
        inv = np.linalg.inv(self.cell_A)
        return np.einsum("ij,gkj,kl->gil", inv, self.rotations, self.cell_A)

    def __len__(self) -> int:
        """The number of operations (rotation parts times lattice translations)."""
        return len(self.rotations) * len(self.lattice_translations)


class HopOrbits:
    """Hops grouped into symmetry classes: the one rule of hop classes in MD and NEB.

    A hop is a start position and a displacement (fractional coordinates of the ops'
    cell). Two hops are one class when an operation maps the start and displacement of
    one onto those of the other, in either direction (``b``'s end as the start and
    ``-d``): so in-plane and interlayer hops of equal length in a layered lattice stay
    apart. Each class is represented by the first hop added to it.

    Parameters
    ----------
    ops
        The operations of the perfect structure (or of its site set).
    start_tol_A
        Two start positions are the same within this, Å.
    vector_tol_A
        Two displacements are the same within this, Å.
    """

    def __init__(self, ops: SpaceGroupOps, start_tol_A: float, vector_tol_A: float) -> None:
        self.ops = ops
        self.start_tol_A = float(start_tol_A)
        self.vector_tol_A = float(vector_tol_A)
        self.starts: list[np.ndarray] = []
        self.vectors: list[np.ndarray] = []
        self._vectors_A: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.starts)

    def find(self, start_frac: np.ndarray, vector_frac: np.ndarray) -> int:
        """Index of the class of the hop, or -1 when it is in none of them yet."""
        if not self.starts:
            return -1
        s = np.asarray(start_frac, dtype=float).reshape(3)
        d = np.asarray(vector_frac, dtype=float).reshape(3)
        rot, tra, cell = self.ops.rotations, self.ops.translations, self.ops.cell_A
        starts = np.concatenate([rot @ s + tra, rot @ (s + d) + tra])  # either direction
        vecs_A = np.concatenate([rot @ d, -(rot @ d)]) @ cell
        close = np.linalg.norm(vecs_A[:, None, :] - np.asarray(self._vectors_A)[None], axis=2) < self.vector_tol_A
        rows, ks = np.nonzero(close)  # (image, class) pairs whose displacements agree
        if not len(rows):
            return -1
        lat = self.ops.lattice_translations
        gap = mic_frac(starts[rows][:, None, :] + lat[None] - np.asarray(self.starts)[ks][:, None, :]) @ cell
        ok = np.min(np.linalg.norm(gap, axis=2), axis=1) < self.start_tol_A
        return int(ks[ok].min()) if np.any(ok) else -1

    def add(self, start_frac: np.ndarray, vector_frac: np.ndarray) -> tuple[int, bool]:
        """The class of the hop, and whether it is new (then the hop represents it)."""
        k = self.find(start_frac, vector_frac)
        if k >= 0:
            return k, False
        self.starts.append(np.mod(np.asarray(start_frac, dtype=float).reshape(3), 1.0))
        self.vectors.append(np.asarray(vector_frac, dtype=float).reshape(3))
        self._vectors_A.append(self.vectors[-1] @ self.ops.cell_A)
        return len(self.starts) - 1, True
