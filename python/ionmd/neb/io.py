"""Reading NEB end points from files (any ASE format, or LAMMPS data with a type map)."""

from __future__ import annotations

from pathlib import Path

from ase import Atoms
from ase.data import atomic_numbers

from ionmd.errors import InputError
from ionmd.lammpsio.datafile import read_type_map

LAMMPS_DATA_SUFFIXES = (".data", ".lmp", ".lammps")


def read_structure(path: str | Path) -> Atoms:
    """Read an end point; LAMMPS data files need a type map (contract 1)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"structure file {p} does not exist")
    from ase.io import read

    try:
        if p.suffix in LAMMPS_DATA_SUFFIXES or p.name.endswith(".data"):
            tmap = read_type_map(p)
            z = {t: atomic_numbers[s] for t, s in tmap.items()}
            return read(p, format="lammps-data", Z_of_type=z, atom_style="atomic", units="metal")
        return read(p)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read structure file {p}: {exc}") from exc

