"""Test helper: run `lmp` (optionally under mpirun) on an ASE structure and read back
energies, forces and pressure, for comparison with Python reference calculators."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# LAMMPS metal units convert eV/A^3 to bar with this value (force->nktv2p).
EV_PER_A3_TO_BAR = 1.6021765e6


def virial_pressure_bar(virial_eV: np.ndarray, volume_A3: float) -> np.ndarray:
    """The virial part of LAMMPS's pressure (bar; xx yy zz xy xz yz) from a 3x3 virial in eV."""
    v = np.asarray(virial_eV)
    return EV_PER_A3_TO_BAR / volume_A3 * np.array([v[0, 0], v[1, 1], v[2, 2], v[0, 1], v[0, 2], v[1, 2]])


@dataclass
class LammpsResult:
    energy_eV: float
    forces_eV_A: np.ndarray  # [n, 3], in atom-ID order
    atom_energy_eV: np.ndarray  # [n]
    pressure_bar: np.ndarray  # [6] xx yy zz xy xz yz (virial only)
    log: str


def lower_triangular(atoms):
    """Rotate ``atoms`` so its cell is LAMMPS's lower-triangular form; return a copy."""
    atoms = atoms.copy()
    a, b, c = np.array(atoms.cell)
    ax = np.linalg.norm(a)
    bx = b @ a / ax
    by = np.sqrt(b @ b - bx**2)
    cx = c @ a / ax
    cy = (b @ c - bx * cx) / by
    cz = np.sqrt(c @ c - cx**2 - cy**2)
    atoms.set_cell([[ax, 0, 0], [bx, by, 0], [cx, cy, cz]], scale_atoms=True)
    atoms.wrap()
    return atoms


def write_data(atoms, path: Path, species: list[str]) -> None:
    """Full-precision LAMMPS atomic data file of a lower-triangular cell."""
    cell = np.array(atoms.cell)
    assert abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) < 1e-12, "cell not lower-triangular"
    lines = [
        "# test structure",
        "",
        f"{len(atoms)} atoms",
        f"{len(species)} atom types",
        f"0 {cell[0, 0]:.16e} xlo xhi",
        f"0 {cell[1, 1]:.16e} ylo yhi",
        f"0 {cell[2, 2]:.16e} zlo zhi",
        f"{cell[1, 0]:.16e} {cell[2, 0]:.16e} {cell[2, 1]:.16e} xy xz yz",
        "",
        "Masses",
        "",
    ]
    from ase.data import atomic_masses, atomic_numbers

    lines += [f"{i + 1} {atomic_masses[atomic_numbers[s]]}" for i, s in enumerate(species)]
    lines += ["", "Atoms # atomic", ""]
    for n, (sym, p) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions, strict=True), start=1):
        lines.append(f"{n} {species.index(sym) + 1} {p[0]:.16e} {p[1]:.16e} {p[2]:.16e}")
    path.write_text("\n".join(lines) + "\n")


def run_lammps(
    atoms,
    pair_style: str,
    species: list[str],
    workdir: Path,
    ranks: int = 1,
    processors: str | None = None,
    extra: str = "",
    pair_coeff: str | None = None,
    check: bool = True,
    timeout_s: float = 300,
) -> LammpsResult:
    """Evaluate ``atoms`` once (``run 0``) with ``pair_style`` and return what LAMMPS computed."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(atoms, workdir / "system.data", species)
    coeff = pair_coeff if pair_coeff is not None else "pair_coeff * * " + " ".join(species)
    script = f"""units metal
atom_style atomic
boundary p p p
{f'processors {processors}' if processors else ''}
read_data system.data
{pair_style}
{coeff}
{extra}
compute peatom all pe/atom
compute pr all pressure NULL virial
thermo_style custom step pe c_pr[1] c_pr[2] c_pr[3] c_pr[4] c_pr[5] c_pr[6]
thermo_modify format float %.16e
dump d all custom 1 forces.dump id fx fy fz c_peatom
dump_modify d sort id format float %.16e
run 0
print "RESULT $(pe:%.16e) $(c_pr[1]:%.16e) $(c_pr[2]:%.16e) $(c_pr[3]:%.16e) $(c_pr[4]:%.16e) $(c_pr[5]:%.16e) $(c_pr[6]:%.16e)" file result.txt
"""
    (workdir / "in.test").write_text(script)
    cmd = [shutil.which("lmp") or "lmp", "-in", "in.test", "-log", "log.lammps"]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s, env=env)
    log = proc.stdout + proc.stderr
    if not check:
        return LammpsResult(np.nan, np.empty((0, 3)), np.empty(0), np.empty(6), log)
    assert proc.returncode == 0, log[-3000:]
    values = np.array((workdir / "result.txt").read_text().split()[1:], float)
    rows = np.loadtxt(workdir / "forces.dump", skiprows=9)
    rows = rows[np.argsort(rows[:, 0])]
    return LammpsResult(values[0], rows[:, 1:4], rows[:, 4], values[1:], log)
