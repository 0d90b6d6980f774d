"""Fixed-cell relaxation of an NEB end point with LAMMPS ``minimize``."""

from __future__ import annotations

import ctypes
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import IonmdError
from ionmd.lammpsio.datafile import write_lammps_data
from ionmd.neb.lammps_input import wrapped_positions_A
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
    e, f, _, _ = _run([atoms], potential, minimize=None)[0]
    return e, f


def evaluate_many(images: list[Atoms], potential: Potential) -> list[float]:
    """Energies (eV) of several configurations of the same atoms and cell, in one LAMMPS.

    The model is loaded once, which matters for TorchScript models (seconds per load).
    """
    return [r[0] for r in _run(images, potential, minimize=None)]


def relax_endpoint(
    atoms: Atoms,
    potential: Potential,
    ftol_eV_A: float = 1e-3,
    max_iter: int = 5000,
) -> RelaxResult:
    """Relax ``atoms`` at fixed cell (``min_style cg``, ``minimize 0 ftol ...``)."""
    return relax_endpoints([atoms], potential, ftol_eV_A, max_iter)[0]


def relax_endpoints(
    images: list[Atoms],
    potential: Potential,
    ftol_eV_A: float = 1e-3,
    max_iter: int = 5000,
) -> list[RelaxResult]:
    """Relax each of several end points (same atoms and cell) at fixed cell, in one LAMMPS."""
    out = []
    for atoms, (e, f, pos, steps) in zip(
        images, _run(images, potential, minimize=(ftol_eV_A, max_iter)), strict=True
    ):
        relaxed = atoms.copy()
        relaxed.calc = None
        d = pos - atoms.positions
        frac = np.linalg.solve(atoms.cell.array.T, d.T).T
        frac -= np.round(frac)
        relaxed.positions = atoms.positions + frac @ atoms.cell.array
        fmax = float(np.sqrt((f**2).sum(axis=1)).max())
        out.append(RelaxResult(relaxed, e, fmax, max_displacement_A(atoms, relaxed), steps))
    return out


def _run(images: list[Atoms], potential: Potential, minimize: tuple[float, int] | None):
    """Run LAMMPS on each configuration in turn, in one instance (one model load).

    All ``images`` must have the same atoms and cell (the first defines the box); each
    one's positions are scattered into LAMMPS before its ``run 0`` or ``minimize``.
    Returns (energy, forces, positions in id order, minimiser steps) per image.
    """
    results = []
    n_atoms = len(images[0])
    with tempfile.TemporaryDirectory(prefix="ionmd_neb_") as tmp:
        data = Path(tmp) / "end.data"
        write_lammps_data(images[0], data, potential.symbols, "NEB end point", keep_cell=True)
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
            for atoms in images:
                if len(atoms) != n_atoms:
                    raise IonmdError(
                        f"configurations of one LAMMPS session must have {n_atoms} atoms, got {len(atoms)}"
                    )
                x = wrapped_positions_A(atoms).ravel()
                lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * x.size)(*x))
                lmp.command("reset_timestep 0")
                if minimize is None:
                    lmp.command("run 0")
                    steps = 0
                else:
                    ftol, n = minimize
                    lmp.commands_list(["min_style cg", f"minimize 0.0 {ftol} {n} {10 * n}"])
                    steps = int(lmp.extract_global("ntimestep"))
                e = float(lmp.get_thermo("pe"))
                pos = np.array(lmp.gather_atoms("x", 1, 3), dtype=float).reshape(n_atoms, 3)
                f = np.array(lmp.gather_atoms("f", 1, 3), dtype=float).reshape(n_atoms, 3)
                results.append((e, f, pos, steps))
        except IonmdError:
            raise
        except Exception as exc:  # LAMMPS reports input errors as generic exceptions
            raise IonmdError(f"LAMMPS failed while evaluating an end point: {exc}") from exc
        finally:
            lmp.close()
    return results
