"""End-point structures for migration barriers.

Built-in cases are hops in rock-salt LiF (Li on the fcc sites, F on the
octahedral sites, lattice parameter ``a_A``):

``direct``
    A Li interstitial at a tetrahedral site (the centre of a small cube of edge
    a/2, surrounded by 4 Li and 4 F) hops straight to the neighbouring cube
    centre through the shared face.
``knockoff``
    Collinear interstitialcy: the interstitial pushes a lattice Li at a corner of
    its cube along [111] into the cube centre on the far side, and takes its
    lattice site.
``vacancy``
    A Li next to a Li vacancy hops into it along [110].

The defect sits in the middle of a supercell of ``n_cells`` x ``n_cells`` x
``n_cells`` conventional cells, so no atom crosses a periodic boundary on the
way. Atom order is the same in both end points (the NEB pairs atoms by index).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

from ionmd.errors import InputError

LIF_A_A = 4.03
"""Default rock-salt LiF lattice parameter (Å)."""

BUILTIN_CASES: tuple[str, ...] = ("direct", "knockoff", "vacancy")

MIN_REPORTED_CELLS = 3
"""Smallest supercell (conventional cells per side) whose barriers are reported as results."""


def lif_supercell(n_cells: int = 3, a_A: float = LIF_A_A) -> Atoms:
    """Return perfect rock-salt LiF with ``n_cells**3`` conventional cells (8 atoms each)."""
    if n_cells < 1:
        raise InputError(f"n_cells must be >= 1, got {n_cells}")
    unit = bulk("LiF", "rocksalt", a=a_A, cubic=True)
    return unit.repeat((n_cells, n_cells, n_cells))


def _index_at(atoms: Atoms, point_A: np.ndarray, symbol: str) -> int:
    """Index of the ``symbol`` atom closest to ``point_A`` (minimum image)."""
    d = atoms.positions - point_A
    cell = atoms.cell.array
    frac = np.linalg.solve(cell.T, d.T).T
    frac -= np.round(frac)
    dist = np.linalg.norm(frac @ cell, axis=1)
    mask = np.array([s == symbol for s in atoms.get_chemical_symbols()])
    dist[~mask] = np.inf
    i = int(np.argmin(dist))
    if dist[i] > 1e-3:
        raise InputError(f"no {symbol} atom at {point_A} (closest {dist[i]:.3f} Å away)")
    return i


def lif_case(case: str, n_cells: int = 3, a_A: float = LIF_A_A) -> tuple[Atoms, Atoms]:
    """Return unrelaxed (initial, final) end points of a built-in LiF hop.

    Parameters
    ----------
    case
        One of :data:`BUILTIN_CASES`.
    n_cells
        Conventional cells per side of the cubic supercell (216 perfect-crystal atoms
        for 3; the interstitial cases then have 217 atoms, the vacancy case 215).
    a_A
        Lattice parameter in Å.
    """
    if case not in BUILTIN_CASES:
        raise InputError(
            f"unknown built-in NEB case {case!r}; choose one of {', '.join(BUILTIN_CASES)}"
        )
    if n_cells < 2:
        raise InputError(f"built-in case {case!r} needs n_cells >= 2, got {n_cells}")
    atoms = lif_supercell(n_cells, a_A)
    origin = np.full(3, (n_cells // 2) * a_A)  # a Li site near the middle of the box
    q = a_A / 4.0
    if case == "vacancy":
        i_vac = _index_at(atoms, origin, "Li")
        i_hop = _index_at(atoms, origin + np.array([2 * q, 2 * q, 0.0]), "Li")
        initial = atoms.copy()
        final = atoms.copy()
        final.positions[i_hop] = atoms.positions[i_vac]
        del initial[i_vac]
        del final[i_vac]
        return initial, final
    site_a = origin + np.array([q, q, q])  # centre of the small cube with Li corner at origin
    initial = atoms.copy()
    initial.append("Li")
    initial.positions[-1] = site_a
    final = initial.copy()
    if case == "direct":
        final.positions[-1] = site_a + np.array([2 * q, 0.0, 0.0])
    else:  # knockoff: interstitial takes the corner site, the corner Li goes on along [111]
        i_corner = _index_at(atoms, origin, "Li")
        final.positions[-1] = origin
        final.positions[i_corner] = origin - np.array([q, q, q])
    return initial, final


def check_endpoints(
    initial: Atoms, final: Atoms, names: tuple[str, str] = ("initial", "final")
) -> None:
    """Raise :class:`InputError` unless the end points can be joined by an NEB path.

    They must have the same number of atoms, the same species in the same order
    and the same cell.
    """
    a, b = names
    if len(initial) != len(final):
        raise InputError(
            f"end points have different atom counts: {a} has {len(initial)} atoms, "
            f"{b} has {len(final)}"
        )
    sa, sb = initial.get_chemical_symbols(), final.get_chemical_symbols()
    bad = [i for i, (x, y) in enumerate(zip(sa, sb, strict=True)) if x != y]
    if bad:
        i = bad[0]
        raise InputError(
            f"end points list atoms in different orders: atom {i + 1} (1-based) is {sa[i]} in {a} "
            f"but {sb[i]} in {b} ({len(bad)} mismatching atoms); reorder {b} to match {a}"
        )
    if not np.allclose(initial.cell.array, final.cell.array, atol=1e-6):
        raise InputError(
            f"end points have different cells: {a} {initial.cell.cellpar()} vs {b} {final.cell.cellpar()}"
        )


def max_displacement_A(a: Atoms, b: Atoms) -> float:
    """Largest minimum-image displacement (Å) of any atom between two configurations."""
    d = b.positions - a.positions
    cell = a.cell.array
    frac = np.linalg.solve(cell.T, d.T).T
    frac -= np.round(frac)
    return float(np.max(np.linalg.norm(frac @ cell, axis=1)))


def rms_distance_A(a: Atoms, b: Atoms) -> float:
    """Root of the summed squared minimum-image displacements (Å): the path-length scale."""
    d = b.positions - a.positions
    cell = a.cell.array
    frac = np.linalg.solve(cell.T, d.T).T
    frac -= np.round(frac)
    return float(np.sqrt(np.sum((frac @ cell) ** 2)))
