"""Point defects of any periodic structure: where to make them, and a record of what was made.

A *vacancy* removes one atom, chosen by

* species alone (``Li``: any Li atom, drawn with the seed),
* symmetry site: Wyckoff position (``Li@2c``, or the letter alone, ``Li@c``) or site label
  (``Li(2)``, see :mod:`ionmd.symmetry`), drawn with the seed among the atoms of that site,
* atom index (``17``: 0-based index in the perfect supercell),
* fractional position in the unit cell (``Li@0.5,0.5,0``: the atom of that species nearest
  to it, within 0.5 Å).

An *interstitial* adds one atom of a species

* in the largest void of the perfect supercell (``Li``, ``Li@void`` or ``Li@interstitial``):
  the point farthest from every atom, found among the Voronoi vertices of the structure
  (:func:`ionmd.analysis.sites.empty_sites`); among symmetry-equivalent voids the seed
  chooses, and a void already taken by an earlier interstitial is skipped,
* at a fractional position of the unit cell (``Li@0.25,0.25,0.25``),
* at a named site of a built-in structure (for example ``tetrahedral``).

Each defect is returned as a :class:`DefectRecord` (index, species, symmetry site, fractional
and Cartesian position), so that NEB end points and site analysis can find it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ionmd.errors import InputError

#: Names of the largest-void interstitial site.
VOID_NAMES = ("void", "interstitial")

_LABEL = re.compile(r"^([A-Z][a-z]?)\((\d+)\)$")
_WYCKOFF = re.compile(r"^(\d*)([a-zA-Z])$")


@dataclass
class DefectRecord:
    """One point defect made by :func:`apply_defects`.

    Attributes
    ----------
    kind : str
        ``vacancy`` or ``interstitial``.
    species : str
        Chemical symbol of the removed or added atom.
    spec : str
        The specification it was made from (e.g. ``Li@2c``).
    index : int
        Vacancy: 0-based index of the removed atom in the perfect supercell.
        Interstitial: 0-based index of the added atom in the defective structure
        (the LAMMPS atom id is ``index + 1``).
    site : str
        Symmetry site label of a vacancy (``Li(2)``); ``void``, a named site or
        ``fractional`` for an interstitial.
    wyckoff : str
        Wyckoff position of a vacancy (``2c``); empty for an interstitial.
    frac : list of float
        Fractional position in the supercell cell.
    cart_A : list of float
        Cartesian position in Å (in the frame of the cell; the LAMMPS data file
        writer rotates it with the cell, see :func:`ionmd.driver.structure.make_structure`).
    nearest_A : float
        Distance from the site to the nearest atom of the perfect supercell
        (the void radius for an interstitial), Å.
    """

    kind: str
    species: str
    spec: str
    index: int
    site: str
    wyckoff: str
    frac: list[float]
    cart_A: list[float]
    nearest_A: float

    def to_dict(self) -> dict:
        """Return the record as a JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line: ``vacancy Li(2) 2c index 5 frac (0.333, 0.667, 0.000)``."""
        where = f"{self.site} {self.wyckoff}".strip()
        frac = ", ".join(f"{v:.4f}" for v in self.frac)
        cart = ", ".join(f"{v:.4f}" for v in self.cart_A)
        ident = f"index {self.index}" if self.kind == "vacancy" else \
            f"index {self.index} (id {self.index + 1})"
        return (f"{self.kind} {self.species} at {where}, {ident}, frac ({frac}), "
                f"cart ({cart}) Å, nearest atom {self.nearest_A:.3f} Å")


def check_element(symbol: str, where: str = "") -> str:
    """Return ``symbol`` if it is a chemical symbol, else raise :class:`InputError`."""
    if symbol not in atomic_numbers or symbol == "X":
        suffix = f" in {where}" if where else ""
        raise InputError(f"unknown element '{symbol}'{suffix}")
    return symbol


def min_length_repeats(cell: np.ndarray, min_length_A: float) -> tuple[int, int, int]:
    """Return the smallest repeats ``(n1, n2, n3)`` whose every perpendicular width is >= L.

    The width of a cell across the planes spanned by two cell vectors is
    ``V / |a_j x a_k|``; a diagonal repeat multiplies the width of its axis only, so
    ``n_i = ceil(L / w_i)``. This is correct for triclinic cells, where the widths are
    shorter than the vector lengths.

    Parameters
    ----------
    cell : ndarray (3, 3)
        Cell vectors (rows), Å.
    min_length_A : float
        Smallest allowed perpendicular width of the supercell, Å.
    """
    if not np.isfinite(min_length_A) or min_length_A <= 0:
        raise InputError(f"minimum cell length must be a positive number of Å, got {min_length_A}")
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    if volume < 1e-8:
        raise InputError("cannot build a minimum-length supercell of a flat cell")
    widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
              for i in range(3)]
    reps = [max(1, int(np.ceil(min_length_A / w - 1e-9))) for w in widths]
    return (reps[0], reps[1], reps[2])


def perpendicular_widths_A(cell: np.ndarray) -> np.ndarray:
    """Return the three perpendicular widths of a cell (Å)."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                     for i in range(3)])


def _nearest_A(atoms: Atoms, positions: np.ndarray) -> np.ndarray:
    """Periodic distance from each of ``positions`` (Cartesian, Å) to the nearest atom.

    Uses a k-d tree of the atoms and their 26 neighbouring images in the Minkowski-reduced
    cell, in which the nearest image of any point is among those 27 copies.
    """
    from ase.geometry import minkowski_reduce
    from scipy.spatial import cKDTree

    positions = np.atleast_2d(np.asarray(positions, dtype=float))
    if len(atoms) == 0:
        return np.full(len(positions), np.inf)
    reduced, _ = minkowski_reduce(np.array(atoms.cell))
    inv = np.linalg.inv(reduced)
    atoms_w = np.mod(atoms.positions @ inv, 1.0) @ reduced
    points_w = np.mod(positions @ inv, 1.0) @ reduced
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    images = (atoms_w[None, :, :] + (shifts @ reduced)[:, None, :]).reshape(-1, 3)
    d, _ = cKDTree(images).query(points_w)
    return np.asarray(d)


def _nearest_to_each(positions: np.ndarray, target: np.ndarray, atoms: Atoms) -> np.ndarray:
    """Periodic distance (Å) from ``target`` to each of ``positions`` in the cell of ``atoms``."""
    from ase.geometry import get_distances

    _, d = get_distances(np.atleast_2d(target), positions, cell=atoms.cell, pbc=True)
    return d[0]


def _canonical_order(frac: np.ndarray, reps: tuple[int, int, int]) -> np.ndarray:
    """Order of sites by unit-cell image, then by fractional position inside the unit cell."""
    unit = np.round(frac * np.asarray(reps), 6)
    shift = np.floor(unit + 1e-6)
    inner = np.round(unit - shift, 4)
    keys = np.column_stack([shift, inner])
    return np.lexsort(keys.T[::-1])


def largest_voids(atoms: Atoms, reps: tuple[int, int, int] = (1, 1, 1),
                  tol_A: float = 0.02) -> tuple[np.ndarray, float]:
    """Return the largest voids of a periodic structure.

    Parameters
    ----------
    atoms : Atoms
        Periodic structure.
    reps : tuple of int
        Repeats of the unit cell in ``atoms`` (sets the canonical order only).
    tol_A : float
        Voids whose radius is within ``tol_A`` of the largest are returned.

    Returns
    -------
    frac : ndarray (n, 3)
        Fractional positions (in ``atoms.cell``) of the voids, in canonical order
        (by unit-cell image, then position in the unit cell).
    radius_A : float
        Distance from those voids to the nearest atom, Å.
    """
    from ionmd.analysis.sites import empty_sites

    cell = np.array(atoms.cell)
    search = np.array([1, 1, 1])
    # Voronoi vertices need the neighbours of a vertex inside the padded search box:
    # search in a copy at least 3 nearest-neighbour shells wide.
    while np.any(perpendicular_widths_A(cell * search[:, None]) < 8.0) and search.prod() < 64:
        search[np.argmin(perpendicular_widths_A(cell * search[:, None]))] += 1
    work = atoms.repeat(tuple(int(n) for n in search))
    frac = empty_sites(work.get_scaled_positions(wrap=True), np.array(work.cell), rel_radius=0.5)
    if len(frac) == 0:
        raise InputError("found no void in the structure")
    frac = np.mod(frac * search, 1.0)
    radius = _nearest_A(atoms, frac @ cell)
    r_max = float(radius.max())
    frac = frac[radius >= r_max - tol_A]
    # Merge duplicates (images of one void in the search copy).
    kept: list[np.ndarray] = []
    for f in frac:
        if kept:
            d = np.asarray(kept) - f
            d -= np.round(d)
            if np.min(np.linalg.norm(d @ cell, axis=1)) < 0.1:
                continue
        kept.append(f)
    out = np.mod(np.asarray(kept), 1.0)
    out[np.isclose(out, 1.0, atol=1e-9)] = 0.0
    out[np.isclose(out, 0.0, atol=1e-9)] = 0.0
    return out[_canonical_order(out, reps)], r_max


def _parse_frac(text: str) -> np.ndarray | None:
    try:
        frac = np.array([float(v) for v in text.split(",")])
    except ValueError:
        return None
    if frac.shape != (3,) or not np.all(np.isfinite(frac)):
        return None
    return frac


def _symmetry_site_matches(site, token: str) -> bool:
    m = _WYCKOFF.match(token)
    if not m:
        return False
    mult, letter = m.groups()
    return site.wyckoff.endswith(letter) and (not mult or site.wyckoff == f"{mult}{letter}")


def _choose_vacancy(atoms: Atoms, spec: str, unit_reps: tuple[int, int, int],
                    rng: np.random.Generator, symmetry) -> tuple[int, str]:
    """Return (index in ``atoms``, species) of the atom that ``spec`` removes."""
    spec_s = spec.strip()
    symbols = atoms.get_chemical_symbols()
    where = f"vacancy '{spec_s}'"
    if re.fullmatch(r"#?\d+", spec_s):
        index = int(spec_s.lstrip("#"))
        if index >= len(atoms):
            raise InputError(f"{where}: atom index {index} is out of range "
                             f"(the supercell has {len(atoms)} atoms, indices 0-{len(atoms) - 1})")
        return index, symbols[index]
    label = _LABEL.match(spec_s)
    if label:
        species = check_element(label.group(1), where)
        sites = [s for s in symmetry().sites if s.label == spec_s]
        if not sites:
            raise InputError(f"{where}: no site {spec_s}; {_site_list(symmetry(), species)}")
        return int(rng.choice(sites[0].indices)), species
    species, _, site = spec_s.partition("@")
    species = check_element(species.strip(), where)
    candidates = [i for i, s in enumerate(symbols) if s == species]
    if not candidates:
        raise InputError(f"{where}: the structure has no {species} atom")
    site = site.strip()
    if not site:
        return int(rng.choice(candidates)), species
    frac = _parse_frac(site)
    if frac is not None:
        target = (frac / np.asarray(unit_reps)) @ np.array(atoms.cell)
        dist = _nearest_to_each(atoms.positions[candidates], target, atoms)
        best = int(np.argmin(dist))
        if float(dist[best]) > 0.5:
            raise InputError(f"{where}: no {species} atom within 0.5 Å of fractional position "
                             f"{site} (nearest {float(dist[best]):.2f} Å)")
        return candidates[best], species
    info = symmetry()
    sites = [s for s in info.sites if s.species == species and _symmetry_site_matches(s, site)]
    if not sites:
        raise InputError(f"{where}: unknown site '{site}'; {_site_list(info, species)}, "
                         "or give an atom index or fractional coordinates x,y,z")
    if len(sites) > 1:
        raise InputError(f"{where}: '{site}' matches {len(sites)} sites "
                         f"({', '.join(s.label + ' ' + s.wyckoff for s in sites)}); name one")
    return int(rng.choice(sites[0].indices)), species


def _site_list(info, species: str) -> str:
    own = sorted(f"{s.label} ({s.wyckoff})" for s in info.sites if s.species == species)
    if not own:
        return f"the structure ({info.spacegroup}) has no {species} site"
    return f"{species} sites of {info.spacegroup}: {', '.join(own)}"


def apply_defects(
    atoms: Atoms,
    reps: tuple[int, int, int] = (1, 1, 1),
    vacancies: Sequence[str] = (),
    interstitials: Sequence[str] = (),
    seed: int = 0,
    named_sites: dict[str, np.ndarray] | None = None,
) -> tuple[Atoms, list[DefectRecord]]:
    """Return a copy of the perfect supercell ``atoms`` with point defects, and their records.

    Vacancies are made first (all chosen in the perfect supercell), then interstitials
    (voids are those of the perfect supercell); see the module docstring for the
    specifications. Choices among equivalent atoms or voids are drawn with ``seed``.

    Parameters
    ----------
    atoms : Atoms
        The perfect supercell.
    reps : tuple of int
        Repeats of the unit cell in ``atoms``: fractional positions in the specifications
        are in the unit cell.
    vacancies, interstitials : sequence of str
        Defect specifications.
    seed : int
        Seed of the random choices.
    named_sites : dict, optional
        Named interstitial sites (name -> fractional positions in the unit cell, shape
        (n, 3)) of a built-in structure.

    Returns
    -------
    tuple of (Atoms, list of DefectRecord)
    """
    from ionmd.symmetry import symmetry_sites

    rng = np.random.default_rng(seed)
    perfect = atoms.copy()
    cell = np.array(perfect.cell)
    cache: dict[str, object] = {}

    def symmetry():
        if "sym" not in cache:
            cache["sym"] = symmetry_sites(perfect)
        return cache["sym"]

    records: list[DefectRecord] = []
    removed: list[int] = []
    for spec in vacancies:
        index, species = _choose_vacancy(perfect, spec, reps, rng, symmetry)
        if index in removed:
            raise InputError(f"vacancy '{spec}': atom {index} is already removed by an earlier "
                             "vacancy")
        removed.append(index)
        site = symmetry().site_of(index)
        others = perfect.copy()
        del others[index]
        records.append(DefectRecord(
            kind="vacancy", species=species, spec=spec.strip(), index=index, site=site.label,
            wyckoff=site.wyckoff, frac=perfect.get_scaled_positions(wrap=True)[index].tolist(),
            cart_A=perfect.positions[index].tolist(),
            nearest_A=float(_nearest_A(others, perfect.positions[index])[0])))
    out = perfect.copy()
    if removed:
        del out[sorted(removed)]
    for spec in interstitials:
        symbol, _, site = spec.strip().partition("@")
        where = f"interstitial '{spec.strip()}'"
        symbol = check_element(symbol.strip(), where)
        site = site.strip() or "void"
        frac = _parse_frac(site)
        if frac is not None:
            frac = np.mod(frac / np.asarray(reps), 1.0)
            label = "fractional"
            if float(_nearest_A(out, frac @ cell)[0]) < 0.3:
                raise InputError(f"{where}: the site is occupied (closer than 0.3 Å to an atom)")
        else:
            if site in VOID_NAMES:
                candidates, radius = cache.get("voids") or largest_voids(perfect, reps)
                cache["voids"] = (candidates, radius)
                min_free = 0.5 * radius
            elif named_sites and site in named_sites:
                unit = np.asarray(named_sites[site], dtype=float).reshape(-1, 3)
                shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1])
                                   for k in range(reps[2])])
                candidates = ((unit[None] + shifts[:, None]) / np.asarray(reps)).reshape(-1, 3)
                min_free = 0.3
            else:
                names = list(VOID_NAMES) + sorted(named_sites or {})
                raise InputError(f"{where}: unknown site '{site}': use one of {', '.join(names)} "
                                 "or fractional coordinates x,y,z of the unit cell")
            candidates = np.asarray(candidates, dtype=float).reshape(-1, 3)
            free = candidates[_nearest_A(out, candidates @ cell) > min_free]
            if len(free) == 0:
                raise InputError(f"{where}: no free '{site}' site left")
            frac = free[int(rng.integers(len(free)))]
            label = site if site not in VOID_NAMES else "void"
        position = frac @ cell
        records.append(DefectRecord(
            kind="interstitial", species=symbol, spec=spec.strip(), index=len(out), site=label,
            wyckoff="", frac=np.asarray(frac).tolist(), cart_A=position.tolist(),
            nearest_A=float(_nearest_A(perfect, position)[0])))
        out += Atoms(symbol, positions=[position], cell=out.cell, pbc=True)
    return out, records
