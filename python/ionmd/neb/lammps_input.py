"""LAMMPS files for an NEB: the data file, per-replica coordinate files and ``in.neb``.

The data file is :func:`ionmd.lammpsio.datafile.write_lammps_data` with ``keep_cell``:
the cell as given (no tilt reduction), so that the replica coordinates are in its frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.lammpsio.datafile import write_lammps_data


def wrapped_positions_A(atoms: Atoms) -> np.ndarray:
    """Cartesian positions (Å) wrapped into the periodic cell."""
    frac = atoms.cell.scaled_positions(atoms.positions) % 1.0
    return frac @ atoms.cell.array


def write_coords(atoms: Atoms, path: Path) -> None:
    """Write a replica coordinate file for ``neb ... each``/``final``: N, then ``id x y z`` lines."""
    pos = wrapped_positions_A(atoms)
    lines = [str(len(atoms))] + [
        f"{i + 1} {x[0]:.10f} {x[1]:.10f} {x[2]:.10f}" for i, x in enumerate(pos)
    ]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class NEBSettings:
    """Controls of the LAMMPS ``neb`` command (metal units).

    Attributes
    ----------
    etol
        Energy tolerance (0 to stop on force only).
    ftol_eV_A
        Force tolerance on the NEB force of every replica (eV/Å).
    n1_steps
        Step budget of the plain NEB stage.
    n2_steps
        Step budget of the climbing-image stage (0: no climbing image).
    nevery
        Print the replica energies every this many steps.
    spring_eV_A2
        Inter-replica spring constant of ``fix neb`` (eV/Å²).
    min_style
        ``fire`` or ``quickmin``.
    timestep_ps
        Time step of the damped-dynamics minimiser (ps).
    """

    etol: float = 0.0
    ftol_eV_A: float = 0.01
    n1_steps: int = 2000
    n2_steps: int = 2000
    nevery: int = 10
    spring_eV_A2: float = 5.0
    min_style: str = "fire"
    timestep_ps: float = 0.002


def write_neb_input(
    workdir: Path,
    images: list[Atoms],
    pair_lines: list[str],
    symbols: list[str],
    settings: NEBSettings,
) -> Path:
    """Write ``initial.data``, ``coords.<k>`` (k = 0..N-1) and ``in.neb`` into ``workdir``.

    Every replica reads ``initial.data`` and then its own ``coords.<k>`` file
    (``neb ... each``; LAMMPS's ``part`` variable counts partitions from 0 here),
    so interpolated (e.g. IDPP) images are used as given.
    Returns the path of ``in.neb``.
    """
    if settings.min_style not in ("fire", "quickmin"):
        raise InputError(f"min_style must be fire or quickmin for NEB, got {settings.min_style!r}")
    if len(images) < 3:
        raise InputError(f"an NEB needs at least 3 images (end points plus one), got {len(images)}")
    if s_bad := [n for n in (settings.n1_steps, settings.nevery) if n < 1]:
        raise InputError(f"NEB step budget and print interval must be >= 1, got {s_bad}")
    # LAMMPS requires both step budgets to be multiples of the print interval.
    nevery = math.gcd(math.gcd(settings.n1_steps, settings.n2_steps), settings.nevery)
    workdir.mkdir(parents=True, exist_ok=True)
    write_lammps_data(images[0], workdir / "initial.data", symbols, "NEB end point", keep_cell=True)
    for k, im in enumerate(images):
        write_coords(im, workdir / f"coords.{k}")
    s = settings
    lines = [
        "# ionmd NEB input: one replica per partition, run with -partition Nx1",
        "units metal",
        "atom_style atomic",
        "atom_modify map array",
        "boundary p p p",
        "read_data initial.data",
        *pair_lines,
        "neighbor 2.0 bin",
        "neigh_modify every 1 delay 0 check yes",
        "variable i equal part",
        f"timestep {s.timestep_ps}",
        f"fix nebfix all neb {s.spring_eV_A2} parallel neigh",
        "thermo 100",
        f"min_style {s.min_style}",
        f"neb {s.etol} {s.ftol_eV_A} {s.n1_steps} {s.n2_steps} {nevery} each coords.${{i}}",
        "write_dump all custom final.${i}.dump id type x y z modify sort id",
    ]
    path = workdir / "in.neb"
    path.write_text("\n".join(lines) + "\n")
    return path
