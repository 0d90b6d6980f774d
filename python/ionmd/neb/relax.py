"""Fixed-cell relaxation of an NEB end point with LAMMPS ``minimize``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import IonmdError
from ionmd.neb.lammps_input import write_data
from ionmd.neb.potential import Potential
from ionmd.neb.structures import max_displacement_A


@dataclass
class RelaxResult:
    """A relaxed end point.

    Attributes
    ----------
    atoms
        Relaxed structure (same atom order, positions unwrapped next to the input's).
    energy_eV
        Potential energy after relaxation.
    max_force_eV_A
        Largest atomic force left.
    max_displacement_A
        Largest distance any atom moved during the relaxation.
    n_steps
        Minimiser iterations used.
    """

    atoms: Atoms
    energy_eV: float
    max_force_eV_A: float
    max_displacement_A: float
    n_steps: int


def _lammps_instance(cmdargs: list[str]):
    from mpi4py import MPI

    from ionmd.neb.lammps_module import lammps_module

    return lammps_module().lammps(cmdargs=cmdargs, comm=MPI.COMM_SELF)


def evaluate(atoms: Atoms, potential: Potential) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of ``atoms`` in a single-process LAMMPS run."""
    e, f, _, _ = _run(atoms, potential, minimize=None)
    return e, f


def relax_endpoint(
    atoms: Atoms,
    potential: Potential,
    ftol_eV_A: float = 1e-3,
    max_iter: int = 5000,
) -> RelaxResult:
    """Relax ``atoms`` at fixed cell (``min_style cg``, ``minimize 0 ftol ...``)."""
    e, f, pos, steps = _run(atoms, potential, minimize=(ftol_eV_A, max_iter))
    relaxed = atoms.copy()
    relaxed.calc = None
    d = pos - atoms.positions
    frac = np.linalg.solve(atoms.cell.array.T, d.T).T
    frac -= np.round(frac)
    relaxed.positions = atoms.positions + frac @ atoms.cell.array
    fmax = float(np.sqrt((f**2).sum(axis=1)).max())
    return RelaxResult(relaxed, e, fmax, max_displacement_A(atoms, relaxed), steps)


def _run(atoms: Atoms, potential: Potential, minimize: tuple[float, int] | None):
    """Run LAMMPS once on ``atoms``; return energy, forces, positions (id order), steps."""
    with tempfile.TemporaryDirectory(prefix="ionmd_neb_") as tmp:
        data = Path(tmp) / "end.data"
        write_data(atoms, data, potential.symbols)
        setup = potential.lines(in_process=True)  # raises a clear error if the plugin is missing
        lmp = _lammps_instance(["-screen", "none", "-log", "none", "-nocite"])
        try:
            lmp.commands_list(
                [
                    "units metal",
                    "atom_style atomic",
                    "atom_modify map array",
                    "boundary p p p",
                    f"read_data {data}",
                    *setup,
                    "thermo_style custom step pe fmax",
                ]
            )
            if minimize is None:
                lmp.command("run 0")
                steps = 0
            else:
                ftol, n = minimize
                lmp.commands_list(["min_style cg", f"minimize 0.0 {ftol} {n} {10 * n}"])
                steps = int(lmp.extract_global("ntimestep"))
            e = float(lmp.get_thermo("pe"))
            n_atoms = len(atoms)
            pos = np.array(lmp.gather_atoms("x", 1, 3), dtype=float).reshape(n_atoms, 3)
            f = np.array(lmp.gather_atoms("f", 1, 3), dtype=float).reshape(n_atoms, 3)
        except Exception as exc:  # LAMMPS reports input errors as generic exceptions
            raise IonmdError(f"LAMMPS failed while evaluating an end point: {exc}") from exc
        finally:
            lmp.close()
    return e, f, pos, steps
