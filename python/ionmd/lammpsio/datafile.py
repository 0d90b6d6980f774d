"""LAMMPS data files: read and write, type maps (type number -> chemical symbol), cell conversion.

A data file written by ``ionmd structure`` carries its type map on the first
(comment) line as ``type_map: 1=Li 2=F``; other data files may name the types
with ``# Li`` comments in the Masses section. :func:`read_type_map` tries both,
in that order (contract 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.data import chemical_symbols as _chemical_symbols

from ionmd.errors import InputError

_ELEMENTS = frozenset(_chemical_symbols[1:])  # 'X' (index 0) is not an element
_TYPE_MAP_RE = re.compile(r"type_map:\s*((?:\d+=[A-Za-z][A-Za-z]?\s*)+)")


@dataclass
class ReferenceStructure:
    """Atoms of a LAMMPS data file.

    Attributes
    ----------
    cell_A : ndarray (3, 3)
        Cell vectors a, b, c as rows, Å.
    origin_A : ndarray (3,)
        Lower corner of the box, Å.
    positions_A : ndarray (n_atoms, 3)
        Cartesian positions sorted by atom id, Å.
    types : ndarray (n_atoms,)
        LAMMPS atom types.
    symbols : list[str]
        Chemical symbol of each atom ("" when the type map does not name it).
    type_map : dict[int, str]
        Type number -> symbol.
    path : str
        The file that was read.
    """

    cell_A: np.ndarray
    origin_A: np.ndarray
    positions_A: np.ndarray
    types: np.ndarray
    symbols: list[str]
    type_map: dict[int, str]
    path: str


def parse_type_map(text: str) -> dict[int, str]:
    """Parse ``"1=Li,2=F"`` (commas or spaces) into ``{1: "Li", 2: "F"}``.

    Raises
    ------
    InputError
        If an entry is not ``<integer>=<symbol>``.
    """
    out: dict[int, str] = {}
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        key, sep, sym = item.partition("=")
        if not sep or not key.strip().isdigit() or not sym.strip().isalpha():
            raise InputError(f"type map entry '{item}' is not of the form <type>=<symbol>, e.g. 1=Li")
        sym = sym.strip()
        if sym not in _ELEMENTS:
            raise InputError(f"type map entry '{item}': '{sym}' is not a chemical element symbol")
        if int(key) in out and out[int(key)] != sym:
            raise InputError(f"type map '{text}' gives type {int(key)} twice ({out[int(key)]} and {sym})")
        out[int(key)] = sym
    if not out:
        raise InputError(f"type map '{text}' is empty")
    return out


def _strip(line: str) -> str:
    return line.split("#", 1)[0].strip()


def read_type_map(path: str | Path) -> dict[int, str]:
    """Return the type map of a LAMMPS data file (``type_map:`` header, else Masses comments).

    Raises
    ------
    InputError
        If the file is missing or names no types.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file '{path}' does not exist")
    lines = path.read_text().splitlines()
    if lines:
        m = _TYPE_MAP_RE.search(lines[0])
        if m:
            return parse_type_map(m.group(1))
    out: dict[int, str] = {}
    for i, line in enumerate(lines):
        if line.strip().split("#")[0].strip() == "Masses":
            for sub in lines[i + 2 :]:
                if not sub.strip():
                    break
                body, _, comment = sub.partition("#")
                tok = body.split()
                if len(tok) >= 2 and tok[0].isdigit() and comment.strip():
                    out[int(tok[0])] = comment.split()[0]
            break
    if not out:
        raise InputError(
            f"data file '{path}' names no atom types: no 'type_map: 1=Li 2=F' on its first line "
            "and no '# Li' comments in its Masses section; pass --type-map 1=Li,2=F"
        )
    return out


def read_data_file(path: str | Path, type_map: dict[int, str] | None = None) -> ReferenceStructure:
    """Read the box and the Atoms section of a LAMMPS data file (atom styles atomic/charge/full).

    Parameters
    ----------
    path : str or Path
        The data file.
    type_map : dict, optional
        Type -> symbol; read from the file when not given.

    Raises
    ------
    InputError
        Naming the file and line when the file is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file '{path}' does not exist")
    if type_map is None:
        try:
            type_map = read_type_map(path)
        except InputError:
            type_map = {}
    lines = path.read_text().splitlines()
    n_atoms = None
    lo = np.zeros(3)
    hi = np.zeros(3)
    tilt = np.zeros(3)
    style = "atomic"
    atoms_at = None
    for i, raw in enumerate(lines[1:], start=2):
        line = _strip(raw)
        tok = line.split()
        if line.endswith(" atoms") and len(tok) == 2:
            n_atoms = int(tok[0])
        for k, ax in enumerate("xyz"):
            if line.endswith(f"{ax}lo {ax}hi"):
                lo[k], hi[k] = float(tok[0]), float(tok[1])
        if line.endswith("xy xz yz"):
            tilt[:] = [float(t) for t in tok[:3]]
        if tok and tok[0] == "Atoms":
            atoms_at = i
            if "#" in raw:
                style = raw.split("#", 1)[1].strip() or "atomic"
            break
    if n_atoms is None or atoms_at is None:
        raise InputError(f"data file '{path}' has no 'N atoms' header line or no Atoms section")
    rows = []
    line_no = atoms_at + 1
    for raw in lines[atoms_at + 1 :]:
        line_no += 1
        line = _strip(raw)
        if not line:
            if rows:
                break
            continue
        rows.append((line_no, line.split()))
        if len(rows) == n_atoms:
            break
    if len(rows) != n_atoms:
        raise InputError(f"data file '{path}': Atoms section has {len(rows)} lines, expected {n_atoms}")
    xcol = {"atomic": 2, "charge": 3, "full": 4, "molecular": 3}.get(style, 2)
    ids, types, pos = [], [], []
    for ln, tok in rows:
        try:
            ids.append(int(tok[0]))
            types.append(int(tok[1] if style not in ("full", "molecular") else tok[2]))
            pos.append([float(t) for t in tok[xcol : xcol + 3]])
            if len(pos[-1]) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise InputError(f"data file '{path}' line {ln}: cannot read atom line '{' '.join(tok)}'") from None
    order = np.argsort(ids)
    cell = np.array([[hi[0] - lo[0], 0, 0], [tilt[0], hi[1] - lo[1], 0], [tilt[1], tilt[2], hi[2] - lo[2]]])
    t = np.asarray(types)[order]
    return ReferenceStructure(
        cell_A=cell,
        origin_A=lo,
        positions_A=np.asarray(pos, dtype=float)[order],
        types=t,
        symbols=[type_map.get(int(x), "") for x in t],
        type_map=dict(type_map),
        path=str(path),
    )


def _rotated_cell(cell: np.ndarray) -> np.ndarray:
    """Return ``cell`` rotated to LAMMPS orientation (a along x, b in the xy plane)."""
    a, b, c = np.asarray(cell, dtype=float)
    if np.dot(np.cross(a, b), c) <= 0:
        raise InputError("cell is left-handed or flat; LAMMPS needs a right-handed cell")
    lx = np.linalg.norm(a)
    xy = np.dot(b, a) / lx
    ly = np.sqrt(np.dot(b, b) - xy**2)
    xz = np.dot(c, a) / lx
    yz = (np.dot(b, c) - xy * xz) / ly
    lz = np.sqrt(np.dot(c, c) - xz**2 - yz**2)
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])


def lammps_box(cell: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Return the LAMMPS-oriented cell (rows a, b, c) and the tilt factors (xy, xz, yz).

    LAMMPS requires ``a`` along x, ``b`` in the xy plane and a right-handed cell.
    Tilt factors are reduced to ``|xy| <= lx/2`` etc. by adding lattice vectors
    (c - n b, c - m a, b - k a), which leaves the periodic crystal unchanged.
    """
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = _rotated_cell(cell)
    n = np.round(yz / ly)
    yz, xz = yz - n * ly, xz - n * xy
    xz -= np.round(xz / lx) * lx
    xy -= np.round(xy / lx) * lx
    new = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    return new, (float(xy), float(xz), float(yz))


def lammps_positions(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Return (reduced LAMMPS cell, positions rotated into it and wrapped inside it), in Å."""
    rotated = _rotated_cell(np.array(atoms.cell))
    new_cell, _ = lammps_box(np.array(atoms.cell))
    pos = atoms.cell.scaled_positions(atoms.positions) @ rotated
    frac = (pos @ np.linalg.inv(new_cell)) % 1.0
    frac[np.isclose(frac, 1.0, rtol=0, atol=1e-12)] = 0.0
    return new_cell, frac @ new_cell


def _as_given_cell(atoms: Atoms, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The cell of ``atoms`` as it is, which must be in LAMMPS form, and its positions wrapped into it."""
    cell = np.array(atoms.cell)
    if abs(cell[0, 1]) > 1e-8 or abs(cell[0, 2]) > 1e-8 or abs(cell[1, 2]) > 1e-8:
        raise InputError(f"{path}: cell is not in LAMMPS orientation (a along x, b in the xy plane), "
                         "which keep_cell needs (positions are written as they are)")
    if cell[0, 0] <= 0 or cell[1, 1] <= 0 or cell[2, 2] <= 0:
        raise InputError(f"{path}: cell is left-handed or flat; LAMMPS needs a right-handed cell")
    frac = atoms.cell.scaled_positions(atoms.positions) % 1.0
    return cell, frac @ cell


def write_lammps_data(
    atoms: Atoms, path: str | Path, types: list[str], description: str = "", keep_cell: bool = False
) -> dict[int, str]:
    """Write ``atoms`` as a LAMMPS ``atomic`` data file (metal units) and return the type map.

    The first line carries ``type_map: 1=Li 2=F`` (contract 1), the second the
    matching ``pair_coeff`` symbols; Masses lines end with ``# <symbol>``.

    Parameters
    ----------
    atoms
        The structure (periodic).
    path
        The file to write (its folder is created).
    types
        The element of each atom type, in type order; every element of ``atoms`` needs one.
    description
        Comment lines written after the header.
    keep_cell
        Write the cell as given, without rotating it or reducing its tilt factors, so that
        the positions in the file are the atoms' own (wrapped into the cell): what files
        written beside it in the same frame need (NEB replica coordinates). The cell must
        then be in LAMMPS orientation already (a along x, b in the xy plane). Default: the
        cell is rotated into LAMMPS form and its tilts reduced (:func:`lammps_positions`).

    Raises
    ------
    InputError
        An element has no type, or ``keep_cell`` and the cell is not in LAMMPS form.
    """
    missing = sorted(set(atoms.get_chemical_symbols()) - set(types))
    if missing:
        raise InputError(f"{Path(path).name}: element(s) {', '.join(missing)} have no type in {list(types)}")
    type_map = {i + 1: s for i, s in enumerate(types)}
    index = {s: i + 1 for i, s in enumerate(types)}
    new_cell, pos = _as_given_cell(atoms, path) if keep_cell else lammps_positions(atoms)
    xy, xz, yz = new_cell[1, 0], new_cell[2, 0], new_cell[2, 1]
    triclinic = any(abs(t) > 1e-10 for t in (xy, xz, yz))
    tm = " ".join(f"{i}={s}" for i, s in type_map.items())
    lines = [
        f"# LAMMPS data file written by ionmd; type_map: {tm}",
        f"# pair_coeff * * {' '.join(types)}",
    ]
    lines += [f"# {line}" for line in description.splitlines()]
    lines += [
        "",
        f"{len(atoms)} atoms",
        f"{len(types)} atom types",
        "",
        f"0.0 {new_cell[0, 0]:.10f} xlo xhi",
        f"0.0 {new_cell[1, 1]:.10f} ylo yhi",
        f"0.0 {new_cell[2, 2]:.10f} zlo zhi",
    ]
    if triclinic:
        lines.append(f"{xy:.10f} {xz:.10f} {yz:.10f} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{i} {atomic_masses[atomic_numbers[s]]:.6f} # {s}" for i, s in type_map.items()]
    lines += ["", "Atoms # atomic", ""]
    for n, (sym, p) in enumerate(zip(atoms.get_chemical_symbols(), pos, strict=True), start=1):
        lines.append(f"{n} {index[sym]} {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
    return type_map
