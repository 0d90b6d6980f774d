"""Reading NEB end points from files (any ASE format, or LAMMPS data with a type map)."""

from __future__ import annotations

import re
from pathlib import Path

from ase import Atoms
from ase.data import atomic_numbers

from ionmd.errors import InputError

LAMMPS_DATA_SUFFIXES = (".data", ".lmp", ".lammps")


def type_map_from_data(path: Path) -> dict[int, str]:
    """The ``type_map: 1=Li 2=F`` of a data file's first line (contract 1), else Masses comments."""
    lines = path.read_text(errors="replace").splitlines()
    m = re.search(r"type_map:\s*((?:\d+=[A-Z][a-z]?\s*)+)", lines[0] if lines else "")
    if m:
        return {int(k): v for k, v in re.findall(r"(\d+)=([A-Z][a-z]?)", m.group(1))}
    tmap: dict[int, str] = {}
    in_masses = False
    for line in lines:
        s = line.strip()
        if s == "Masses":
            in_masses = True
            continue
        if in_masses:
            if not s:
                if tmap:
                    break
                continue
            mm = re.match(r"(\d+)\s+\S+\s*#\s*([A-Z][a-z]?)\b", s)
            if not mm:
                break
            tmap[int(mm.group(1))] = mm.group(2)
    if not tmap:
        raise InputError(
            f"{path}: no 'type_map:' on the first line and no '# Symbol' comments in Masses"
        )
    return tmap


def read_structure(path: str | Path) -> Atoms:
    """Read an end point; LAMMPS data files need a type map (contract 1)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"structure file {p} does not exist")
    from ase.io import read

    try:
        if p.suffix in LAMMPS_DATA_SUFFIXES or p.name.endswith(".data"):
            tmap = type_map_from_data(p)
            z = {t: atomic_numbers[s] for t, s in tmap.items()}
            return read(p, format="lammps-data", Z_of_type=z, atom_style="atomic", units="metal")
        return read(p)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read structure file {p}: {exc}") from exc

