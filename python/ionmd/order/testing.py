"""Lattice models with exactly known ground states, as cheap ASE calculators.

:class:`PairLatticeCalculator` gives a pair energy to every pair of atoms closer than a
cutoff (a nearest-neighbour shell on a lattice): an Ising-like model whose ground states
are known exactly on simple lattices. Used by the tests of ``ionmd order`` and reachable
from the command line as ``--energy ionmd.order.testing:ising_ab`` and similar.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list


class PairLatticeCalculator(Calculator):
    """E = sum over pairs i<j with r_ij < cutoff of pair_eV[{s_i, s_j}], shell by shell.

    Parameters
    ----------
    pair_eV
        Energy (eV) of a neighbouring pair per unordered pair of symbols, e.g.
        ``{("A", "B"): -1.0}``; missing pairs cost nothing.
    cutoff_A
        Neighbour cutoff in Å (between the first and second neighbour shells).
    shells
        Further shells ``[(cutoff_A, pair_eV), ...]`` with increasing cutoffs: a pair at
        distance r belongs to the first shell whose cutoff exceeds r (``pair_eV`` and
        ``cutoff_A`` are the innermost shell). Every periodic image of a pair counts.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, pair_eV: dict[tuple[str, str], float], cutoff_A: float,
                 shells: list[tuple[float, dict[tuple[str, str], float]]] | None = None) -> None:
        super().__init__()
        self.shells = [(float(cutoff_A), {tuple(sorted(k)): float(v) for k, v in pair_eV.items()})]
        for rc, table in shells or []:
            if float(rc) <= self.shells[-1][0]:
                raise ValueError(f"shell cutoffs must increase: {rc} after {self.shells[-1][0]}")
            self.shells.append((float(rc), {tuple(sorted(k)): float(v) for k, v in table.items()}))
        self.pair_eV = self.shells[0][1]
        self.cutoff_A = self.shells[0][0]
        self._pairs: dict[tuple[bytes, bytes], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def calculate(self, atoms: Atoms | None = None, properties=("energy",),
                  system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        key = (self.atoms.cell.array.tobytes(), self.atoms.positions.tobytes())
        if key not in self._pairs:  # orderings of one lattice share their neighbour list
            if len(self._pairs) > 64:
                self._pairs.clear()
            i, j, d = neighbor_list("ijd", self.atoms, self.shells[-1][0])
            shell = np.searchsorted([rc for rc, _ in self.shells], d, side="right")
            up = i < j
            self._pairs[key] = (i[up], j[up], shell[up])
        i, j, shell = self._pairs[key]
        symbols = sorted({s for _, table in self.shells for pair in table for s in pair}
                         | set(self.atoms.get_chemical_symbols()))
        code = {s: n for n, s in enumerate(symbols)}
        table = np.zeros((len(self.shells), len(symbols), len(symbols)))
        for k, (_, pairs) in enumerate(self.shells):
            for (a, b), e in pairs.items():
                table[k, code[a], code[b]] = table[k, code[b], code[a]] = e
        z = np.array([code[s] for s in self.atoms.get_chemical_symbols()], int)
        energy = float(table[shell, z[i], z[j]].sum())
        self.results = {"energy": energy, "forces": np.zeros((len(self.atoms), 3))}


def simple_cubic(n: int, a_A: float = 2.0, symbol: str = "Cu") -> Atoms:
    """An ``n x n x n`` simple-cubic cell of one element (the parent of a lattice model)."""
    return Atoms(symbol, cell=[a_A] * 3, pbc=True).repeat((n, n, n))


def square_layer(n: int, a_A: float = 2.0, c_A: float = 10.0, symbol: str = "Cu") -> Atoms:
    """An ``n x n`` square lattice in a cell with a vacuum-like ``c_A`` (a 2-D model)."""
    return Atoms(symbol, cell=[a_A, a_A, c_A], pbc=True).repeat((n, n, 1))


def ising_ab(elements=None) -> PairLatticeCalculator:
    """Cu/Au nearest-neighbour antiferro model on a lattice of spacing 2 Å (J = 0.1 eV).

    Like pairs cost +0.1 eV, unlike pairs -0.1 eV; on a bipartite lattice at 50/50 the
    ground state is the checkerboard (rock-salt), E = -0.1 eV x (number of bonds).
    """
    return PairLatticeCalculator({("Cu", "Cu"): 0.1, ("Au", "Au"): 0.1, ("Cu", "Au"): -0.1},
                                 cutoff_A=2.5)


def flat_model(elements=None) -> PairLatticeCalculator:
    """No pair energy at all: every ordering is a ground state (a negative control)."""
    return PairLatticeCalculator({}, cutoff_A=2.5)


def vacancy_l10(elements=None) -> PairLatticeCalculator:
    """Cu/Au/vacancy model on a simple-cubic lattice of spacing 2 Å (half the sites empty).

    First neighbours (2 Å): every Cu-Cu, Au-Au and Cu-Au pair costs +0.1 eV. Second
    neighbours (2.83 Å): like pairs +0.01 eV, unlike pairs -0.01 eV. With Cu:1/4, Au:1/4,
    X:1/2 on N sites the exact ground state is the atoms on one checkerboard class (an
    fcc lattice: no first-neighbour pair) ordered L1_0 on it (alternate (001) planes of
    Cu and Au: 8 unlike and 4 like second neighbours per atom), E = -0.01 eV x N, i.e.
    -0.02 eV/atom. It is a lower bound of every ordering: each triangle of second
    neighbours has at most two unlike pairs, so at most 2/3 of the at most 3N
    second-neighbour pairs are unlike, and first-neighbour pairs only add energy.
    """
    return PairLatticeCalculator({("Cu", "Cu"): 0.1, ("Au", "Au"): 0.1, ("Cu", "Au"): 0.1},
                                 cutoff_A=2.5,
                                 shells=[(3.0, {("Cu", "Cu"): 0.01, ("Au", "Au"): 0.01,
                                                ("Cu", "Au"): -0.01})])
