"""End-point checks and minimum-image distances between NEB configurations (any material)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.symmetry import mic_frac


def minimum_image_A(d_A: np.ndarray, cell_A: np.ndarray) -> np.ndarray:
    """Cartesian displacements ``d_A`` (n, 3) reduced to their nearest periodic images in the cell ``cell_A``, Å.

    The reduction is made in fractional coordinates (each component to [-0.5, 0.5]), which
    is the nearest image for displacements short against the cell.
    """
    cell = np.asarray(cell_A, dtype=float)
    return mic_frac(np.linalg.solve(cell.T, np.asarray(d_A, dtype=float).T).T) @ cell


def atom_index_at(atoms: Atoms, point_A: np.ndarray, symbol: str | None = None, tol_A: float = 1e-3) -> int:
    """Index of the atom (of ``symbol``, if given) closest to ``point_A``, minimum image.

    Raises :class:`InputError` if that atom is more than ``tol_A`` away.
    """
    dist = np.linalg.norm(minimum_image_A(atoms.positions - np.asarray(point_A, dtype=float), atoms.cell.array),
                          axis=1)
    if symbol is not None:
        mask = np.array([s == symbol for s in atoms.get_chemical_symbols()])
        dist[~mask] = np.inf
    i = int(np.argmin(dist))
    if dist[i] > tol_A:
        what = f"{symbol} atom" if symbol else "atom"
        raise InputError(f"no {what} at {np.round(point_A, 4)} Å (closest {dist[i]:.3f} Å away)")
    return i


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
    return float(np.max(np.linalg.norm(minimum_image_A(b.positions - a.positions, a.cell.array), axis=1)))


def rms_distance_A(a: Atoms, b: Atoms) -> float:
    """Root of the summed squared minimum-image displacements (Å): the path-length scale."""
    return float(np.sqrt(np.sum(minimum_image_A(b.positions - a.positions, a.cell.array) ** 2)))


HOST_TOL_A = 1e-6
"""Atoms displaced less than this (Å) between two end points are the shared host."""


def on_relaxed_host(initial: Atoms, final: Atoms, relaxed_initial: Atoms) -> Atoms:
    """``final`` with its host atoms (those where ``initial`` and ``final`` agree) put where ``relaxed_initial`` has them.

    The atoms that move in the hop keep their ``final`` positions. Relaxing this instead of
    ``final`` keeps both end points in one variant of the host: when the model's host is
    unstable (e.g. a layer that buckles), two end points relaxed separately from the ideal
    host can pick different variants, and the band between them then includes the host's
    change of variant, not just the hop.
    """
    d = np.linalg.norm(minimum_image_A(final.positions - initial.positions, initial.cell.array), axis=1)
    host = d < HOST_TOL_A
    start = final.copy()
    start.calc = None
    start.positions[host] = relaxed_initial.positions[host]
    return start
