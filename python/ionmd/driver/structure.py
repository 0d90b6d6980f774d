"""Build periodic structures with point defects and write them as LAMMPS data files.

The built-in structure is rock-salt LiF. Any file that ASE reads (CIF, POSCAR,
extxyz, ...) can be used instead. Supercells are built from the (conventional)
cell, then point defects are applied: ``Li@interstitial`` adds a Li atom at a free
tetrahedral site of the rock-salt lattice (the centre of a small cube, fractional
(1/4, 1/4, 1/4) of the conventional cell), ``Li@0.5,0.5,0.5`` adds one at the given
fractional coordinates of the *unit* cell, and ``--remove Li`` removes one Li atom
(a vacancy). Where a choice exists (which atom, which site) it is drawn with the
given random seed, so a structure is reproducible from its command line.

The data file follows shared contract 1: the first (comment) line carries
``type_map: 1=Li 2=F`` and the Masses section has ``# Li`` comments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from ionmd.errors import InputError

#: Lattice constant of rock-salt LiF at room temperature, in Å.
LIF_A_ANGSTROM = 4.03

#: Named interstitial sites of the built-in rock-salt lattice (fractional, conventional cell).
_ROCKSALT_TETRAHEDRAL = np.array(
    [[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)]
)
NAMED_SITES = ("interstitial", "tetrahedral")


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
    """

    path: str
    n_atoms: int
    counts: dict[str, int]
    type_map: dict[int, str]
    pair_coeff: str
    cell_A: list[list[float]]
    description: str
    defects: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the result as a JSON string."""
        return json.dumps(asdict(self), indent=2)


def check_element(symbol: str, where: str = "") -> str:
    """Return ``symbol`` if it is a chemical symbol, else raise :class:`InputError`."""
    if symbol not in atomic_numbers or symbol == "X":
        suffix = f" in {where}" if where else ""
        raise InputError(f"unknown element '{symbol}'{suffix}")
    return symbol


def rocksalt_lif(a_A: float = LIF_A_ANGSTROM) -> Atoms:
    """Return the 8-atom conventional rock-salt LiF cell with lattice constant ``a_A`` (Å)."""
    if not np.isfinite(a_A) or a_A <= 0:
        raise InputError(f"lattice constant must be positive, got {a_A} Å")
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    frac = np.vstack([fcc, fcc + [0.5, 0, 0]]) % 1.0
    atoms = Atoms(
        symbols=["Li"] * 4 + ["F"] * 4,
        scaled_positions=frac,
        cell=np.eye(3) * a_A,
        pbc=True,
    )
    atoms.info["ionmd_rocksalt"] = True
    return atoms


def read_structure(path: str | Path) -> Atoms:
    """Read any structure file that ASE understands (CIF, POSCAR, extxyz, ...)."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise InputError(f"structure file '{path}' does not exist")
    try:
        atoms = read(str(path))
    except Exception as exc:  # ASE raises many types for unreadable files
        raise InputError(f"cannot read structure file '{path}': {exc}") from exc
    if isinstance(atoms, list):  # pragma: no cover - read() returns the last image
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise InputError(f"structure file '{path}' holds no atoms")
    if not np.all(atoms.pbc) or abs(atoms.cell.volume) < 1e-8:
        raise InputError(f"structure file '{path}' has no periodic 3-D cell")
    return atoms


def parse_supercell(spec: str | int | tuple[int, int, int]) -> tuple[int, int, int]:
    """Parse ``N`` or ``NxMxK`` (or ``N,M,K``) into three positive repeats."""
    if isinstance(spec, int):
        reps = (spec, spec, spec)
    elif isinstance(spec, tuple):
        reps = spec
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
    if any(int(r) != r or r < 1 for r in reps):
        raise InputError(f"bad supercell '{spec}': repeats must be positive integers")
    return (int(reps[0]), int(reps[1]), int(reps[2]))


def _parse_add(spec: str) -> tuple[str, str | np.ndarray]:
    if "@" not in spec:
        raise InputError(f"bad defect '--add {spec}': expected ELEMENT@SITE, e.g. Li@interstitial")
    symbol, site = spec.split("@", 1)
    check_element(symbol.strip(), f"'--add {spec}'")
    site = site.strip()
    if site in NAMED_SITES:
        return symbol.strip(), site
    try:
        frac = np.array([float(v) for v in site.split(",")])
    except ValueError:
        frac = np.array([])
    if frac.shape != (3,) or not np.all(np.isfinite(frac)):
        raise InputError(
            f"unknown site '{site}' in '--add {spec}': use one of {', '.join(NAMED_SITES)} "
            "or fractional coordinates x,y,z of the unit cell"
        )
    return symbol.strip(), frac


def _min_distance_A(atoms: Atoms, position: np.ndarray) -> float:
    if len(atoms) == 0:
        return np.inf
    from ase.geometry import get_distances

    _, d = get_distances(position[None, :], atoms.positions, cell=atoms.cell, pbc=True)
    return float(d.min())


def apply_defects(
    atoms: Atoms,
    unit_cell: np.ndarray,
    reps: tuple[int, int, int],
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    rocksalt: bool = False,
) -> Atoms:
    """Return a copy of the supercell ``atoms`` with point defects applied.

    Parameters
    ----------
    atoms : Atoms
        The supercell.
    unit_cell : ndarray
        The 3x3 cell (Å) of the unit the supercell was built from.
    reps : tuple of int
        Repeats of ``unit_cell`` in ``atoms``.
    add : list of str
        ``ELEMENT@interstitial`` (rock salt only) or ``ELEMENT@x,y,z`` (fractional
        coordinates of the unit cell) for each added atom.
    remove : list of str
        One chemical symbol per removed atom (vacancy).
    seed : int
        Seed of the random choices of removed atoms and interstitial sites.
    rocksalt : bool
        Whether the named rock-salt sites are defined for this structure.
    """
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    for symbol in remove:
        symbol = symbol.strip()
        check_element(symbol, f"'--remove {symbol}'")
        candidates = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == symbol]
        if not candidates:
            raise InputError(f"cannot remove '{symbol}': the structure has no {symbol} atom left")
        del atoms[int(rng.choice(candidates))]
    for spec in add:
        symbol, site = _parse_add(spec)
        if isinstance(site, str):
            if not rocksalt:
                raise InputError(
                    f"unknown site '{site}' in '--add {spec}': named sites exist only for the "
                    "built-in rock-salt structure; give fractional coordinates, e.g. "
                    f"{symbol}@0.25,0.25,0.25"
                )
            shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1])
                               for k in range(reps[2])])
            frac_sites = (_ROCKSALT_TETRAHEDRAL[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
            sites = frac_sites @ unit_cell
            free = [s for s in sites if _min_distance_A(atoms, s) > 0.3]
            if not free:
                raise InputError(f"no free '{site}' site left for '--add {spec}'")
            position = free[int(rng.integers(len(free)))]
        else:
            position = site @ unit_cell
            if _min_distance_A(atoms, position) < 0.3:
                raise InputError(f"site of '--add {spec}' is occupied (closer than 0.3 Å to an atom)")
        atoms += Atoms(symbol, positions=[position], cell=atoms.cell, pbc=True)
    return atoms


def build_structure(
    source: str | Path | None = None,
    supercell: str | int | tuple[int, int, int] = 1,
    a_A: float | None = None,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    seed: int = 0,
) -> Atoms:
    """Return the structure: built-in LiF (``source`` None or "LiF") or a file, with defects."""
    reps = parse_supercell(supercell)
    if source is None or str(source).lower() in ("lif", "builtin:lif"):
        unit = rocksalt_lif(LIF_A_ANGSTROM if a_A is None else float(a_A))
        rocksalt = True
    else:
        if a_A is not None:
            raise InputError("--a applies only to the built-in LiF structure")
        unit = read_structure(source)
        rocksalt = False
    unit.wrap()
    atoms = unit.repeat(reps)
    return apply_defects(atoms, np.array(unit.cell), reps, add=add, remove=remove, seed=seed,
                         rocksalt=rocksalt)


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


def write_lammps_data(
    atoms: Atoms, path: str | Path, types: list[str], description: str = ""
) -> dict[int, str]:
    """Write ``atoms`` as a LAMMPS ``atomic`` data file (metal units) and return the type map.

    The first line carries ``type_map: 1=Li 2=F`` (contract 1), the second the
    matching ``pair_coeff`` symbols; Masses lines end with ``# <symbol>``.
    """
    type_map = {i + 1: s for i, s in enumerate(types)}
    index = {s: i + 1 for i, s in enumerate(types)}
    new_cell, pos = lammps_positions(atoms)
    xy, xz, yz = new_cell[1, 0], new_cell[2, 0], new_cell[2, 1]
    triclinic = any(abs(t) > 1e-10 for t in (xy, xz, yz))
    tm = " ".join(f"{i}={s}" for i, s in type_map.items())
    lines = [
        f"# LAMMPS data file written by ionmd structure; type_map: {tm}",
        f"# pair_coeff * * {' '.join(types)}",
    ]
    if description:
        lines.append(f"# {description}")
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


def read_type_map(path: str | Path) -> dict[int, str]:
    """Return the type map of a data file: ``type_map:`` header, else Masses comments."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"data file '{path}' does not exist")
    text = path.read_text(errors="replace").splitlines()
    first = text[0] if text else ""
    if "type_map:" in first:
        result: dict[int, str] = {}
        for token in first.split("type_map:", 1)[1].split():
            if "=" not in token:
                break
            key, sym = token.split("=", 1)
            result[int(key)] = sym
        if result:
            return result
    result = {}
    in_masses = False
    for line in text[1:]:
        stripped = line.strip()
        if stripped == "Masses":
            in_masses = True
            continue
        if in_masses:
            if not stripped:
                if result:
                    break
                continue
            if stripped[0].isalpha():
                break
            if "#" in stripped:
                result[int(stripped.split()[0])] = stripped.split("#", 1)[1].split()[0]
    if not result:
        raise InputError(f"data file '{path}' has no type_map: header and no Masses comments")
    return result


def make_structure(
    output: str | Path,
    source: str | Path | None = None,
    supercell: str | int | tuple[int, int, int] = 1,
    a_A: float | None = None,
    add: list[str] | tuple[str, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    types: list[str] | tuple[str, ...] | None = None,
) -> StructureResult:
    """Build a structure (see :func:`build_structure`) and write it as a LAMMPS data file."""
    atoms = build_structure(source, supercell, a_A, add, remove, seed)
    order = type_order(atoms, types)
    reps = parse_supercell(supercell)
    name = "LiF rock salt" if source is None or str(source).lower() in ("lif", "builtin:lif") \
        else Path(str(source)).name
    desc = f"{name} {reps[0]}x{reps[1]}x{reps[2]}"
    defects = [f"+{s}" for s in add] + [f"-{s}" for s in remove]
    if defects:
        desc += f", defects {' '.join(defects)}, seed {seed}"
    type_map = write_lammps_data(atoms, output, order, desc)
    symbols = atoms.get_chemical_symbols()
    new_cell, _ = lammps_box(np.array(atoms.cell))
    return StructureResult(
        path=str(output),
        n_atoms=len(atoms),
        counts={s: symbols.count(s) for s in order},
        type_map=type_map,
        pair_coeff="pair_coeff * * " + " ".join(order),
        cell_A=new_cell.tolist(),
        description=desc,
        defects=defects,
    )
