"""Tests of ``ionmd label`` (ionmd.models.label): physics of the labels, resumability, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.io import read, write

from ionmd.errors import InputError
from ionmd.models.label import label_frames, load_e0


def _cu_frames(n: int = 6) -> list[Atoms]:
    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=i)
        atoms.set_cell(atoms.cell * (1.0 + 0.01 * (i % 3 - 1)), scale_atoms=True)
        frames.append(atoms)
    return frames


@pytest.fixture
def cu_file(tmp_path):
    path = tmp_path / "cu.extxyz"
    write(path, _cu_frames())
    return path


def test_label_emt_matches_direct_calculator(cu_file, tmp_path):
    out = tmp_path / "lab.extxyz"
    result = label_frames(cu_file, out, "emt")
    assert result.n_frames == 6 and result.n_new == 6
    labelled = read(out, ":")
    for i, (ref, lab) in enumerate(zip(read(cu_file, ":"), labelled, strict=True)):
        ref.calc = EMT()
        assert lab.info["frame_index"] == i and lab.info["labeller"] == "emt"
        assert lab.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(lab.get_forces(), ref.get_forces(), atol=1e-8)
        np.testing.assert_allclose(lab.get_stress(), ref.get_stress(), atol=1e-8)
    # Isolated-atom energy of the labeller, for MACE's E0s.
    single = Atoms("Cu", cell=[20.0] * 3, pbc=True)
    single.calc = EMT()
    assert load_e0(out)["Cu"] == pytest.approx(single.get_potential_energy())


def test_label_is_resumable(cu_file, tmp_path):
    out = tmp_path / "lab.extxyz"
    first = label_frames(cu_file, out, "emt", limit=2)
    assert (first.n_frames, first.n_new) == (2, 2)
    # Simulate an interrupted write: a torn last frame.
    with open(out, "a") as fh:
        fh.write(
            '32\nLattice="7.2 0 0 0 7.2 0 0 0 7.2" Properties=species:S:1:pos:R:3\nCu 0.0 0.0\n'
        )
    second = label_frames(cu_file, out, "emt")
    assert (second.n_frames, second.n_new) == (6, 4)
    one_shot = tmp_path / "one.extxyz"
    label_frames(cu_file, one_shot, "emt")
    a, b = read(out, ":"), read(one_shot, ":")
    assert [x.info["frame_index"] for x in a] == list(range(6))
    np.testing.assert_allclose(
        [x.get_potential_energy() for x in a], [x.get_potential_energy() for x in b]
    )


def test_label_lammps_lj_forces_match_ase(tmp_path):
    """A classical LAMMPS pair style through `lammps:` gives the same forces as ASE's LJ."""
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=3)
    src = tmp_path / "ar.extxyz"
    write(src, [atoms])
    out = tmp_path / "ar_lab.extxyz"
    label_frames(src, out, "lammps:lj/cut 6.0;* * 0.0104 3.4")
    lab = read(out)
    ref = atoms.copy()
    ref.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=6.0, smooth=False)
    # ASE shifts the LJ energy to zero at rc; forces are unaffected by the shift.
    np.testing.assert_allclose(lab.get_forces(), ref.get_forces(), atol=1e-7)
    assert np.abs(lab.get_forces()).max() > 1e-3


def test_label_errors_name_the_problem(cu_file, tmp_path):
    with pytest.raises(InputError, match="nothere.extxyz: no such file"):
        label_frames(tmp_path / "nothere.extxyz", tmp_path / "o.extxyz", "emt")
    mol = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5]])
    nocell = tmp_path / "nocell.extxyz"
    write(nocell, _cu_frames(1) + [mol])
    with pytest.raises(InputError, match="frame 1 has no .*periodic cell"):
        label_frames(nocell, tmp_path / "o.extxyz", "emt")
    lif = bulk("LiF", "rocksalt", a=4.03)
    wrong = tmp_path / "lif.extxyz"
    write(wrong, [lif])
    with pytest.raises(InputError, match="element\\(s\\) F, Li unknown to the calculator"):
        label_frames(wrong, tmp_path / "o.extxyz", "emt")
    with pytest.raises(InputError, match="element\\(s\\) Cu"):
        label_frames(cu_file, tmp_path / "o.extxyz", "emt", elements=["Ag"])
    with pytest.raises(InputError, match="unknown calculator"):
        label_frames(cu_file, tmp_path / "o.extxyz", "dft-please")
    with pytest.raises(InputError, match="cannot load nosuchmodule.make"):
        label_frames(cu_file, tmp_path / "o.extxyz", "python:nosuchmodule:make")
    # An output labelled from other frames is not silently extended.
    other = tmp_path / "other.extxyz"
    label_frames(cu_file, other, "emt", limit=1)
    shifted = _cu_frames()
    shifted[0].positions += 0.3
    moved = tmp_path / "moved.extxyz"
    write(moved, shifted)
    with pytest.raises(InputError, match="frame 0 does not match"):
        label_frames(moved, other, "emt")


def test_label_python_factory(cu_file, tmp_path, monkeypatch):
    mod = tmp_path / "mycalc.py"
    mod.write_text("from ase.calculators.emt import EMT\n\ndef make():\n    return EMT()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "py.extxyz"
    result = label_frames(cu_file, out, "python:mycalc:make", limit=1)
    assert result.n_new == 1
    ref = read(cu_file, 0)
    ref.calc = EMT()
    assert read(out).get_potential_energy() == pytest.approx(ref.get_potential_energy())
    assert (
        json.loads((tmp_path / "py.extxyz.e0.json").read_text())["labeller"] == "python:mycalc:make"
    )
