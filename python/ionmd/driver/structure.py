"""Build periodic structures with point defects and write them as LAMMPS data files.

The source is any file that ASE reads (CIF, POSCAR, extxyz, ...; LAMMPS data files
with a ``type_map:`` header or ``# Li`` Masses comments) or a built-in structure of
:mod:`ionmd.examples` (the default when no file is given). The supercell is given by
repeats (``2`` or ``2x2x3``) or by a minimum perpendicular width in Å
(:func:`ionmd.driver.defects.min_length_repeats`). Point defects (vacancies by
species, Wyckoff site, index or position; interstitials in the largest void or at a
position) are made by :func:`ionmd.driver.defects.apply_defects`; where a choice
exists it is drawn with the given random seed, so a structure is reproducible from
its command line, and every removed or added atom is reported.

The data file follows shared contract 1: the first (comment) line carries
``type_map: 1=Li 2=F`` and the Masses section has ``# Li`` comments. Each defect is
described in a header comment line (``# defect: ...``), and all of them in the JSON
sidecar ``OUTPUT.json`` (see :func:`make_structure`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ionmd.driver.defects import DefectRecord, apply_defects, check_element, min_length_repeats
from ionmd.errors import InputError
from ionmd.lammpsio.datafile import (  # noqa: F401  (the one home of data files; re-exported here)
    lammps_box,
    lammps_positions,
    read_type_map,
    write_lammps_data,
)

__all__ = ["StructureResult", "BuiltStructure", "build_structure", "build_with_records", "check_element", "make_structure",
           "parse_supercell", "read_structure", "DefectRecord", "apply_defects"]


@dataclass
class StructureResult:
    """What :func:`make_structure` wrote.

    Attributes
    ----------
    path : str
        The LAMMPS data file.
    n_atoms : int
        Number of atoms in the file.
    counts : dict[str, int]
        Atoms per chemical symbol.
    type_map : dict[int, str]
        LAMMPS atom type -> chemical symbol.
    pair_coeff : str
        The matching ``pair_coeff * * <symbols>`` line.
    cell_A : list[list[float]]
        Cell vectors of the written (LAMMPS-oriented) box, in Å.
    description : str
        One line saying how the structure was built.
    defects : list of str
        The defect specifications, ``+SPEC`` (interstitial) or ``-SPEC`` (vacancy).
    supercell : list of int
        Repeats of the unit cell.
    defect_sites : list of dict
        One :class:`~ionmd.driver.defects.DefectRecord` per defect; ``frac`` is in the
        written cell and ``cart_A`` in its LAMMPS frame.
    sidecar : str
        The JSON sidecar with this result (``OUTPUT.json``).
    """

    path: str
    n_atoms: int
    counts: dict[str, int]
    type_map: dict[int, str]
    pair_coeff: str
    cell_A: list[list[float]]
    description: str
    defects: list[str] = field(default_factory=list)
    supercell: list[int] = field(default_factory=lambda: [1, 1, 1])
    defect_sites: list[dict] = field(default_factory=list)
    sidecar: str = ""

    def to_json(self) -> str:
        """Return the result as a JSON string."""
        return json.dumps(asdict(self), indent=2)


def _is_lammps_data(path: Path) -> bool:
    if path.suffix.lower() in (".data", ".lmp", ".lammps") or path.name.startswith("data."):
        return True
    try:
        head = path.read_text(errors="replace").splitlines()[:12]
    except OSError:
        return False
    return any(line.split("#")[0].strip().endswith(" atoms") for line in head[1:])


def read_structure(path: str | Path) -> Atoms:
    """Read any structure file that ASE understands (CIF, POSCAR, extxyz, LAMMPS data, ...).

    A LAMMPS data file needs its species: a ``type_map:`` header or Masses comments.
    """
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise InputError(f"structure file '{path}' does not exist")
    try:
        if _is_lammps_data(path):
            type_map = read_type_map(path)
            for sym in type_map.values():
                check_element(sym, f"the type map of '{path}'")
            z_of_type = {t: atomic_numbers[s] for t, s in type_map.items()}
            atoms = read(str(path), format="lammps-data", Z_of_type=z_of_type, units="metal")
        else:
            atoms = read(str(path))
    except InputError:
        raise
    except Exception as exc:  # ASE raises many types for unreadable files
        reason = str(exc).strip()
        if not reason:
            kind = path.suffix.lstrip(".").upper() or "structure"
            reason = (f"it is not a valid {kind} file (ASE's reader raised "
                      f"{type(exc).__name__} without a message)")
        raise InputError(f"cannot read structure file '{path}': {reason}") from exc
    if isinstance(atoms, list):  # pragma: no cover - read() returns the last image
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise InputError(f"cannot read structure file '{path}': it holds no atoms")
    if not np.all(atoms.pbc) or abs(atoms.cell.volume) < 1e-8:
        raise InputError(f"structure file '{path}' has no periodic 3-D cell")
    atoms.calc = None
    return atoms


def parse_supercell(spec: str | int | tuple[int, int, int]) -> tuple[int, int, int]:
    """Parse ``N`` or ``NxMxK`` (or ``N,M,K``) into three positive repeats."""
    if isinstance(spec, int):
        reps = (spec, spec, spec)
    elif isinstance(spec, (tuple, list)):
        reps = tuple(spec)
    else:
        text = str(spec).strip().lower().replace(",", "x")
        parts = text.split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InputError(f"bad supercell '{spec}': expected N or NxMxK") from None
        if len(values) == 1:
            values = values * 3
        if len(values) != 3:
            raise InputError(f"bad supercell '{spec}': expected N or NxMxK")
        reps = tuple(values)  # type: ignore[assignment]
    if len(reps) != 3 or any(int(r) != r or r < 1 for r in reps):
        raise InputError(f"bad supercell '{spec}': repeats must be positive integers")
    return (int(reps[0]), int(reps[1]), int(reps[2]))


@dataclass
class BuiltStructure:
    """A structure with defects, the perfect supercell it came from, and the defect records."""

    atoms: Atoms
    perfect: Atoms
    reps: tuple[int, int, int]
    name: str
    records: list[DefectRecord]


def build_with_records(
    source: str | Path | None = None,
    supercell: str | int | tuple[int, int, int] = 1,
    a_A: float | None = None,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    min_length_A: float | None = None,
) -> BuiltStructure:
    """Like :func:`build_structure`, but also return the perfect supercell and defect records."""
    from ionmd.examples import builtin_structure, is_builtin

    named: dict[str, np.ndarray] = {}
    if is_builtin(source) and not (source is not None and Path(str(source)).is_file()):
        builtin = builtin_structure(None if source is None else str(source), a_A=a_A)
        unit, named, name = builtin.unit, builtin.named_sites, builtin.description
    else:
        if a_A is not None:
            raise InputError("--a (lattice constant) applies only to built-in structures, "
                             f"not to the file '{source}'")
        unit = read_structure(source)
        name = Path(str(source)).name
    unit.wrap()
    if min_length_A is not None:
        if supercell not in (None, 1, "1", (1, 1, 1)):
            raise InputError(f"give a supercell ('{supercell}') or a minimum length "
                             f"({min_length_A} Å), not both")
        reps = min_length_repeats(np.array(unit.cell), float(min_length_A))
    else:
        reps = parse_supercell(1 if supercell is None else supercell)
    perfect = unit.repeat(reps)
    atoms, records = apply_defects(perfect, reps, vacancies=list(remove),
                                   interstitials=list(add), seed=seed, named_sites=named)
    return BuiltStructure(atoms, perfect, reps, name, records)


def build_structure(
    source: str | Path | None = None,
    supercell: str | int | tuple[int, int, int] = 1,
    a_A: float | None = None,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    min_length_A: float | None = None,
) -> Atoms:
    """Return the structure: a built-in (``source`` None or its name) or a file, with defects.

    Parameters
    ----------
    source : str or Path, optional
        Structure file, or the name of a built-in (default: :data:`ionmd.examples.DEFAULT_STRUCTURE`).
    supercell : str, int or tuple
        Repeats: ``N``, ``NxMxK`` or a tuple.
    a_A : float, optional
        Lattice constant of a built-in structure, Å.
    add, remove : list of str
        Interstitial and vacancy specifications (:mod:`ionmd.driver.defects`).
    seed : int
        Seed of the choices among equivalent atoms or voids.
    min_length_A : float, optional
        Instead of ``supercell``: the smallest diagonal supercell whose perpendicular
        widths are all at least this, Å.
    """
    return build_with_records(source, supercell, a_A, add, remove, seed, min_length_A).atoms


def type_order(atoms: Atoms, types: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Return the atom-type order: ``types`` if given, else symbols by first appearance."""
    present = list(dict.fromkeys(atoms.get_chemical_symbols()))
    if not types:
        return present
    order = [check_element(t.strip(), "--types") for t in types]
    if len(set(order)) != len(order):
        raise InputError(f"--types lists an element twice: {','.join(order)}")
    missing = [s for s in present if s not in order]
    if missing:
        raise InputError(f"--types {','.join(order)} misses element(s) {', '.join(missing)} "
                         "present in the structure")
    return order


def make_structure(
    output: str | Path,
    source: str | Path | None = None,
    supercell: str | int | tuple[int, int, int] = 1,
    a_A: float | None = None,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    types: list[str] | tuple[str, ...] | None = None,
    min_length_A: float | None = None,
) -> StructureResult:
    """Build a structure (see :func:`build_structure`) and write it as a LAMMPS data file.

    Besides the data file ``output``, writes the JSON sidecar ``output + ".json"`` with the
    returned :class:`StructureResult`; each defect also gets a ``# defect: ...`` header line
    in the data file. Defect positions are given in the written (LAMMPS-oriented) cell.
    """
    built = build_with_records(source, supercell, a_A, add, remove, seed, min_length_A)
    atoms, reps = built.atoms, built.reps
    order = type_order(atoms, types)
    desc = f"{built.name} {reps[0]}x{reps[1]}x{reps[2]}"
    defects = [f"+{s}" for s in add] + [f"-{s}" for s in remove]
    if defects:
        desc += f", defects {' '.join(defects)}, seed {seed}"
    new_cell, _ = lammps_box(np.array(atoms.cell))
    sites = []
    for rec in built.records:
        one = Atoms(rec.species, scaled_positions=[rec.frac], cell=atoms.cell, pbc=True)
        cart = lammps_positions(one)[1][0]
        sites.append(DefectRecord(**{**rec.to_dict(), "cart_A": cart.tolist(),
                                     "frac": np.linalg.solve(new_cell.T, cart).tolist()}))
    header = "\n".join([desc] + [f"defect: {r.summary()}" for r in sites])
    type_map = write_lammps_data(atoms, output, order, header)
    symbols = atoms.get_chemical_symbols()
    sidecar = Path(str(output) + ".json")
    result = StructureResult(
        path=str(output),
        n_atoms=len(atoms),
        counts={s: symbols.count(s) for s in order},
        type_map=type_map,
        pair_coeff="pair_coeff * * " + " ".join(order),
        cell_A=new_cell.tolist(),
        description=desc,
        defects=defects,
        supercell=list(reps),
        defect_sites=[r.to_dict() for r in sites],
        sidecar=str(sidecar),
    )
    sidecar.write_text(result.to_json() + "\n")
    return result
