"""ionmd order: energies from a TorchScript model through pair_style mlip/torch (LAMMPS).

The reference is mace's own calculator on the same orderings (with vacancies).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from ionmd.order.energy import Evaluator
from ionmd.order.search import Operators
from ionmd.order.sublattice import build_problem, read_parent

pytest.importorskip("mace")


def test_model_energy_matches_mace_calculator(tmp_path, mace_float64, mace_calculator):
    from ionmd.plugin import plugin_path

    if plugin_path() is None:
        pytest.skip("ionmd plugin not built")
    parent = tmp_path / "lif.extxyz"
    write(parent, bulk("LiF", "rocksalt", a=4.03, cubic=True))
    problem = build_problem(read_parent(parent), "2x1x1", ["Li=Li:6,X:2"])
    evaluator = Evaluator(f"model:{mace_float64[1]}", ["F", "Li"])
    ops = Operators(problem, np.random.default_rng(0))
    for _ in range(2):
        atoms = problem.atoms(ops.random())
        assert atoms.get_chemical_formula() == "F8Li6"
        got = evaluator(atoms).energy_eV
        ref = atoms.copy()
        ref.calc = mace_calculator
        assert got == pytest.approx(float(ref.get_potential_energy()), abs=1e-6)
    with pytest.raises(Exception, match="cell is not available"):
        Evaluator(f"model:{mace_float64[1]}", ["F", "Li"], relax="cell")
    with pytest.raises(Exception, match="no element"):
        Evaluator(f"model:{mace_float64[1]}", ["F", "Li", "Na"])
