"""ionmd order: ASE energies with and without relaxation (EMT on an fcc Cu/Au cell)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

from ionmd.errors import InputError
from ionmd.order.energy import Evaluator
from ionmd.order.search import Operators, SearchConfig
from ionmd.order.sublattice import build_problem, read_parent
from ionmd.order.workflow import run_order


@pytest.fixture()
def fcc(tmp_path):
    path = tmp_path / "cu.extxyz"
    write(path, bulk("Cu", "fcc", a=3.7, cubic=True))  # between Cu (3.6) and Au (4.08)
    return path


def test_relaxation_lowers_the_energy(fcc):
    problem = build_problem(read_parent(fcc), "2x1x1", ["Cu=Cu:0.5,Au:0.5"])
    atoms = problem.atoms(Operators(problem, np.random.default_rng(1)).random())
    atoms.rattle(0.05, seed=0)  # off the ideal sites, so relaxing must move the atoms
    before = atoms.positions.copy()
    ref = atoms.copy()
    ref.calc = EMT()
    e_none = Evaluator("emt", ["Au", "Cu"])(atoms)
    assert e_none.energy_eV == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    assert e_none.relaxed is None
    fixed = Evaluator("emt", ["Au", "Cu"], relax="fixed-cell", fmax_eV_A=0.01)(atoms)
    free = Evaluator("emt", ["Au", "Cu"], relax="cell", fmax_eV_A=0.01)(atoms)
    assert fixed.energy_eV < e_none.energy_eV - 1e-4
    assert free.energy_eV <= fixed.energy_eV + 1e-6
    assert np.allclose(fixed.relaxed.cell.array, atoms.cell.array)
    assert not np.allclose(free.relaxed.cell.array, atoms.cell.array, atol=1e-3)
    assert not np.allclose(fixed.relaxed.positions, before, atol=1e-4)  # atoms moved
    assert np.array_equal(atoms.positions, before)  # ... in a copy, not in the input


def test_run_order_relaxed_cell_is_written(fcc, tmp_path):
    res = run_order(fcc, tmp_path / "o", ["Cu=Cu:0.5,Au:0.5"], "2x1x1", "emt", relax="cell",
                    fmax_eV_A=0.05, config=SearchConfig(population=3, offspring=2,
                                                        max_evals=5, seed=0),
                    top_k=2, random_budget=2, quiet=True)
    top = read(tmp_path / "o" / res.top[0]["extxyz"])
    assert top.info["energy_eV"] == pytest.approx(res.top[0]["energy_eV"])
    assert not np.allclose(top.cell.array, np.diag([7.4, 3.7, 3.7]), atol=1e-3)
    check = top.copy()
    check.calc = EMT()
    assert check.get_potential_energy() == pytest.approx(res.top[0]["energy_eV"], abs=1e-6)


def test_unknown_energy_and_bad_relax_are_clear(fcc):
    with pytest.raises(InputError, match="unknown calculator"):
        Evaluator("nosuch", ["Cu"])
    with pytest.raises(InputError, match="--relax 'wiggle'"):
        Evaluator("emt", ["Cu"], relax="wiggle")
    with pytest.raises(InputError, match="cannot label element"):
        Evaluator("emt", ["Li", "Cu"])
    with pytest.raises(InputError, match="cannot load"):
        Evaluator("no_such_module_xyz:factory", ["Cu"])
