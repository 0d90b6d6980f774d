"""Halo mode of pair_style mlip/torch: MACE on 1-4 MPI ranks with ghosts of one cutoff.

Node features cross rank boundaries (and periodic self-images) once per layer
through ``ionmd::halo_exchange``. Energies, forces and virials must equal mace's
calculator and the other modes to round-off in float64, including a triclinic
cell and decompositions where ranks own no atom; per-atom virials (which halo
models provide) must sum to the global virial and agree between decompositions.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from conftest import lif_interstitial, lif_small, lif_triclinic
from lammps_runner import EV_PER_A3_TO_BAR, lower_triangular, run_lammps, write_data

SPECIES = ["Li", "F"]


def lif_small_shifted():
    """The 8-atom cell moved 0.5 A along x: on a 4 x 1 x 1 grid, ranks 1 and 3 own no atom."""
    atoms = lif_small()
    atoms.positions[:, 0] += 0.5
    atoms.wrap()
    return atoms


STRUCTURES = {"interstitial": lif_interstitial, "triclinic": lif_triclinic, "small": lif_small_shifted}

CASES = [
    # (structure, ranks, pair_style words, processors grid, mode named in the log)
    ("interstitial", 1, "", None, "fold"),
    ("interstitial", 1, "mode halo", None, "halo"),   # periodic self-images through LAMMPS comm
    ("interstitial", 2, "", None, "halo"),
    ("interstitial", 3, "", None, "halo"),
    ("interstitial", 4, "", None, "halo"),
    ("interstitial", 2, "mode shell", None, "ghost-shell"),
    ("triclinic", 1, "mode halo", None, "halo"),
    ("triclinic", 3, "", None, "halo"),
    ("small", 4, "", "4 1 1", "halo"),               # two of the four ranks own no atom
]


@pytest.fixture(scope="module")
def halo_model(mace_halo_float64):
    return mace_halo_float64


@pytest.mark.parametrize(("name", "ranks", "words", "grid", "mode"), CASES)
def test_halo_matches_calculator(name, ranks, words, grid, mode, halo_model, mace_calculator, tmp_path):
    atoms = lower_triangular(STRUCTURES[name]())
    ref = atoms.copy()
    ref.calc = mace_calculator
    e_ref = ref.get_potential_energy()
    f_ref = ref.get_forces()
    s_ref = ref.get_stress(voigt=False)

    res = run_lammps(atoms, f"pair_style mlip/torch {halo_model} {words}", SPECIES, tmp_path,
                     ranks=ranks, processors=grid)
    assert f"mlip/torch: {mode}" in res.log
    n = len(atoms)
    assert abs(res.energy_eV - e_ref) / n < 1e-8
    assert np.abs(res.forces_eV_A - f_ref).max() < 1e-7
    p_ref = -EV_PER_A3_TO_BAR * np.array(
        [s_ref[0, 0], s_ref[1, 1], s_ref[2, 2], s_ref[0, 1], s_ref[0, 2], s_ref[1, 2]]
    )
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-9 * EV_PER_A3_TO_BAR
    assert abs(res.atom_energy_eV.sum() - e_ref) < 1e-8 * n


def _atom_virials(atoms, model, ranks: int, words: str, workdir):
    """Per-atom virials (eV, xx yy zz xy xz yz, by atom ID) and the global virial (eV)."""
    extra = (
        "compute sa all stress/atom NULL virial\n"
        "compute vs all reduce sum c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]\n"
        "dump v all custom 1 virial.dump id c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]\n"
        "dump_modify v sort id format float %.16e\n"
    )
    res = run_lammps(atoms, f"pair_style mlip/torch {model} {words}", SPECIES, workdir,
                     ranks=ranks, extra=extra)
    rows = np.loadtxt(workdir / "virial.dump", skiprows=9)
    rows = rows[np.argsort(rows[:, 0])]
    # stress/atom reports -virial x nktv2p (bar A^3); the virial pressure is virial x nktv2p / V.
    volume = atoms.get_volume()
    return -rows[:, 1:] / EV_PER_A3_TO_BAR, res.pressure_bar * volume / EV_PER_A3_TO_BAR


def test_halo_per_atom_virial(halo_model, tmp_path):
    atoms = lower_triangular(lif_interstitial())
    one, global_one = _atom_virials(atoms, halo_model, 1, "", tmp_path / "r1")
    two, global_two = _atom_virials(atoms, halo_model, 2, "", tmp_path / "r2")
    # Per-atom virials sum to the global virial (eV), on 1 and 2 ranks, and agree atom by atom.
    assert np.abs(one.sum(0) - global_one).max() < 1e-8
    assert np.abs(two.sum(0) - global_two).max() < 1e-8
    assert np.abs(one - two).max() < 1e-9
    assert np.abs(one).max() > 1e-3  # not trivially zero


def test_mode_halo_needs_halo_export(mace_float64, tmp_path):
    atoms = lower_triangular(lif_small())
    res = run_lammps(atoms, f"pair_style mlip/torch {mace_float64[1]} mode halo", SPECIES, tmp_path,
                     check=False)
    assert "mode halo needs models exported with `ionmd export --halo`" in res.log


def test_halo_nve_4_ranks_5000_steps(halo_model, tmp_path):
    """Energy conservation with features crossing four ranks every step."""
    from ase.build import bulk

    atoms = bulk("LiF", "rocksalt", a=4.03, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=7)
    atoms = lower_triangular(atoms)
    write_data(atoms, tmp_path / "system.data", SPECIES)
    (tmp_path / "in.nve").write_text(
        "units metal\natom_style atomic\nprocessors 4 1 1\nread_data system.data\n"
        f"pair_style mlip/torch {halo_model}\npair_coeff * * Li F\n"
        "neighbor 0.5 bin\nneigh_modify every 1 delay 0 check yes\n"
        "velocity all create 600 1 mom yes rot no\ntimestep 0.001\nfix 1 all nve\n"
        "fix e all print 50 \"$(step) $(etotal:%.12e) $(temp)\" file energy.txt screen no\n"
        "thermo 1000\nrun 5000\n"
    )
    proc = subprocess.run(["mpirun", "-np", "4", "lmp", "-in", "in.nve", "-log", "none"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "halo (node features exchanged between layers)" in proc.stdout
    data = np.loadtxt(tmp_path / "energy.txt", comments="#")
    steps, etot, temp = data[:, 0], data[:, 1], data[:, 2]
    n = len(atoms)
    assert steps[-1] == 5000
    assert temp.mean() > 100
    assert (etot.max() - etot.min()) / n < 1e-3
    drift_eV_atom_ps = np.polyfit(steps * 1e-3, etot, 1)[0] / n
    assert abs(drift_eV_atom_ps) < 1e-4
