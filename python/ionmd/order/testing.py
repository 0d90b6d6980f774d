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
    """E = sum over pairs i<j with r_ij < cutoff of pair_eV[{s_i, s_j}].

    Parameters
    ----------
    pair_eV
        Energy (eV) of a neighbouring pair per unordered pair of symbols, e.g.
        ``{("A", "B"): -1.0}``; missing pairs cost nothing.
    cutoff_A
        Neighbour cutoff in Å (between the first and second neighbour shells).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, pair_eV: dict[tuple[str, str], float], cutoff_A: float) -> None:
        super().__init__()
        self.pair_eV = {tuple(sorted(k)): float(v) for k, v in pair_eV.items()}
        self.cutoff_A = float(cutoff_A)
        self._pairs: dict[tuple[bytes, bytes], tuple[np.ndarray, np.ndarray]] = {}

    def calculate(self, atoms: Atoms | None = None, properties=("energy",),
                  system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        key = (self.atoms.cell.array.tobytes(), self.atoms.positions.tobytes())
        if key not in self._pairs:  # orderings of one lattice share their neighbour list
            if len(self._pairs) > 64:
                self._pairs.clear()
            i, j = neighbor_list("ij", self.atoms, self.cutoff_A)
            self._pairs[key] = (i[i < j], j[i < j])
        i, j = self._pairs[key]
        symbols = sorted({s for pair in self.pair_eV for s in pair}
                         | set(self.atoms.get_chemical_symbols()))
        code = {s: n for n, s in enumerate(symbols)}
        table = np.zeros((len(symbols), len(symbols)))
        for (a, b), e in self.pair_eV.items():
            table[code[a], code[b]] = table[code[b], code[a]] = e
        z = np.array([code[s] for s in self.atoms.get_chemical_symbols()], int)
        energy = float(table[z[i], z[j]].sum())
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
