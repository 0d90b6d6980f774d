"""Symmetry-canonical keys of orderings (spglib), so equivalent orderings are one candidate.

The space group of the supercell *template* (ordered sites with their elements, each
searched sublattice as one dummy species) includes the supercell's lattice translations.
Each operation permutes the searched sites; two occupations related by one of these
permutations are the same ordering. The canonical key of an occupation is a hash of the
lexicographically smallest of its images, so equal keys mean equivalent orderings
exactly (for the ideal template), and the key of every image is the same.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.spatial import cKDTree

from ionmd.errors import IonmdError
from ionmd.order.sublattice import OrderProblem

#: spglib tolerance in Å.
SYMPREC_A = 1e-3


def site_permutations(problem: OrderProblem, symprec_A: float = SYMPREC_A) -> np.ndarray:
    """Permutations of the searched sites under the template's space group.

    Returns
    -------
    numpy.ndarray
        ``(n_ops, n_searched)`` integers: row ``g`` maps searched-site position ``p``
        (index into ``problem.searched``) to the position its site is sent to.
    """
    import spglib
    from ase.data import atomic_numbers

    numbers = np.zeros(len(problem.fixed_symbols), int)
    for i, s in enumerate(problem.fixed_symbols):
        if s:
            numbers[i] = atomic_numbers[s]
    for k, sub in enumerate(problem.sublattices):
        numbers[sub.sites] = 200 + k
    sym = spglib.get_symmetry((problem.cell_A, problem.frac, numbers), symprec=symprec_A)
    if sym is None:
        raise IonmdError("spglib could not find the symmetry of the supercell template")
    frac = problem.frac[problem.searched] % 1.0
    frac[frac >= 1.0 - 1e-12] = 0.0
    tree = cKDTree(frac, boxsize=1.0)
    tol = 10 * symprec_A / float(np.min(np.linalg.norm(problem.cell_A, axis=1)))
    perms = []
    for rot, trans in zip(sym["rotations"], sym["translations"], strict=True):
        image = (frac @ rot.T + trans) % 1.0
        image[image >= 1.0 - 1e-12] = 0.0
        dist, idx = tree.query(image)
        if np.max(dist) > max(tol, 1e-4) or len(set(idx.tolist())) != len(idx):
            continue  # an operation that does not map the searched sites onto themselves
        perms.append(idx)
    if not perms:  # pragma: no cover - the identity always maps
        perms = [np.arange(len(frac))]
    return np.unique(np.array(perms, dtype=np.int32), axis=0)


class CanonicalKeys:
    """Canonical occupation keys for one problem (the permutations are computed once)."""

    def __init__(self, problem: OrderProblem, use_symmetry: bool = True) -> None:
        self.perms = (site_permutations(problem) if use_symmetry
                      else np.arange(problem.n_searched, dtype=np.int32)[None, :])

    @property
    def n_operations(self) -> int:
        """Number of distinct site permutations (the order of the group used)."""
        return int(self.perms.shape[0])

    def canonical(self, occ: np.ndarray) -> np.ndarray:
        """The lexicographically smallest image of ``occ`` under the permutations."""
        images = np.empty(self.perms.shape, dtype=np.int16)
        images[np.arange(self.perms.shape[0])[:, None], self.perms] = occ[None, :]
        alive = np.arange(images.shape[0])
        for col in range(images.shape[1]):
            column = images[alive, col]
            alive = alive[column == column.min()]
            if alive.size == 1:
                break
        return images[alive[0]]

    def key(self, occ: np.ndarray) -> str:
        """A short hex key, equal for symmetry-equivalent occupations."""
        canon = np.ascontiguousarray(self.canonical(np.asarray(occ, dtype=np.int16)))
        return hashlib.sha1(canon.tobytes()).hexdigest()[:24]
