"""Read LAMMPS data files and type maps (type number -> chemical symbol).

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
