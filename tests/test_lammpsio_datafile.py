"""The one LAMMPS data-file writer: reduced (default) or kept cell (NEB), read back by the one reader."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from ionmd.errors import InputError
from ionmd.lammpsio.datafile import read_data_file, read_type_map, write_lammps_data


def _tilted() -> Atoms:
    """A lower-triangular cell whose tilt xy = 0.8 lx is outside LAMMPS's reduced range."""
    cell = np.array([[4.0, 0.0, 0.0], [3.2, 3.5, 0.0], [0.4, -0.6, 5.0]])
    frac = np.array([[0.1, 0.2, 0.3], [0.95, 0.5, 0.05], [0.5, 0.99, 0.7]])
    return Atoms(["Na", "Cl", "Na"], scaled_positions=frac, cell=cell, pbc=True)


def test_kept_cell_is_written_as_given_with_the_atoms_own_positions(tmp_path):
    atoms = _tilted()
    path = tmp_path / "kept.data"
    assert write_lammps_data(atoms, path, ["Na", "Cl"], "NEB end point", keep_cell=True) == {1: "Na", 2: "Cl"}
    back = read_data_file(path)
    np.testing.assert_allclose(back.cell_A, atoms.cell.array, atol=1e-9)
    wrapped = (atoms.get_scaled_positions() % 1.0) @ atoms.cell.array
    np.testing.assert_allclose(back.positions_A, wrapped, atol=1e-9)
    assert back.symbols == ["Na", "Cl", "Na"] and read_type_map(path) == {1: "Na", 2: "Cl"}
    assert "# NEB end point" in path.read_text()


def test_default_reduces_the_tilt_and_keeps_the_crystal(tmp_path):
    atoms = _tilted()
    path = tmp_path / "reduced.data"
    write_lammps_data(atoms, path, ["Na", "Cl"])
    back = read_data_file(path)
    assert abs(back.cell_A[1, 0]) <= 0.5 * back.cell_A[0, 0] + 1e-9  # 3.2 -> 3.2 - 4.0
    assert back.cell_A[1, 0] == pytest.approx(-0.8)
    assert abs(np.linalg.det(back.cell_A)) == pytest.approx(abs(atoms.cell.volume))
    # the same crystal: each written atom is at a lattice translate of the original
    frac_orig = np.linalg.solve(back.cell_A.T, atoms.positions.T).T
    frac_back = np.linalg.solve(back.cell_A.T, back.positions_A.T).T
    d = frac_back - frac_orig
    np.testing.assert_allclose(d - np.round(d), 0.0, atol=1e-9)


def test_refusals_name_the_problem(tmp_path):
    rotated = _tilted()
    rotated.rotate(30, "z", rotate_cell=True)
    with pytest.raises(InputError, match=r"r.data: cell is not in LAMMPS orientation"):
        write_lammps_data(rotated, tmp_path / "r.data", ["Na", "Cl"], keep_cell=True)
    write_lammps_data(rotated, tmp_path / "r.data", ["Na", "Cl"])  # rotated into LAMMPS form by default
    with pytest.raises(InputError, match=r"m.data: element\(s\) Cl have no type in \['Na'\]"):
        write_lammps_data(_tilted(), tmp_path / "m.data", ["Na"])
