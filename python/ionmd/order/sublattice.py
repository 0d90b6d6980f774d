"""Parent structures with partially occupied sublattices, and composition targets.

A *parent* is a periodic cell whose sites are either ordered (one element) or belong
to a named sublattice with target fractions per species. Vacancies are the species
``X`` (``Vac`` and ``Va`` are accepted as spellings). Sources:

- a CIF with partial occupancies (read with pymatgen): symmetry-equivalent sites with
  the same occupancies form one sublattice, named after their majority element
  (``Ni`` for a 0.8 Ni / 0.1 Mn / 0.1 Co site); a site whose occupancies sum to less
  than one is completed with vacancies;
- any ordered structure ASE reads, with ``--sublattice`` targets.

``--sublattice LABEL=SP:VALUE[,SP:VALUE...]`` sets the targets of the sites labelled
``LABEL`` (an element of ordered sites, or a CIF sublattice name). A value with a
``.`` or ``/`` is a fraction of the sites (the fractions must sum to one); a plain
integer is a number of sites in the supercell. Example: ``Li=Li:0.75,X:0.25``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.driver.structure import check_element, parse_supercell, read_structure
from ionmd.errors import InputError

VACANCY = "X"
_VACANCY_SPELLINGS = {"X": VACANCY, "Vac": VACANCY, "Va": VACANCY, "vac": VACANCY}
#: Tolerance on the number of sites implied by a fraction (CIFs round 1/3 to 0.333).
COUNT_TOL = 0.05


@dataclass
class ParentSite:
    """One site of the parent cell: fractional position, label and occupancies."""

    frac: np.ndarray
    label: str
    occupancy: dict[str, float]


@dataclass
class Parent:
    """The parent cell: lattice vectors (rows, Å) and its sites."""

    cell_A: np.ndarray
    sites: list[ParentSite]
    source: str = ""

    def labels(self) -> list[str]:
        """Site labels in order of first appearance."""
        return list(dict.fromkeys(s.label for s in self.sites))


@dataclass
class Sublattice:
    """A set of supercell sites whose species are searched over.

    Attributes
    ----------
    name
        Site label (``Ni``, ``Li``, ...).
    sites
        Indices of its sites in the supercell template.
    counts
        Target number of sites per species (``X`` for vacancies); sums to ``len(sites)``.
    """

    name: str
    sites: np.ndarray
    counts: dict[str, int]

    def fractions(self) -> dict[str, float]:
        """Target fractions per species."""
        n = len(self.sites)
        return {s: c / n for s, c in self.counts.items()}


@dataclass
class OrderProblem:
    """A supercell template with its searched sublattices.

    Attributes
    ----------
    cell_A
        Supercell vectors (rows, Å).
    frac
        Fractional positions of every template site (ordered and searched).
    fixed_symbols
        Element of each ordered site; ``""`` for searched sites.
    sublattices
        The searched sublattices.
    species
        Every species that occupies a searched site (codes index this list).
    repeats
        Supercell repeats of the parent cell.
    """

    cell_A: np.ndarray
    frac: np.ndarray
    fixed_symbols: list[str]
    sublattices: list[Sublattice]
    species: list[str]
    repeats: tuple[int, int, int] = (1, 1, 1)
    source: str = ""
    searched: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.searched = np.concatenate([s.sites for s in self.sublattices]).astype(int)

    @property
    def n_searched(self) -> int:
        """Number of searched sites."""
        return int(self.searched.size)

    def code(self, symbol: str) -> int:
        """Integer code of a species."""
        return self.species.index(symbol)

    def block(self, k: int) -> slice:
        """Slice of the occupation vector that belongs to sublattice ``k``."""
        start = sum(len(s.sites) for s in self.sublattices[:k])
        return slice(start, start + len(self.sublattices[k].sites))

    def reference_occupation(self) -> np.ndarray:
        """One occupation (codes, searched-site order) with the target composition."""
        parts = []
        for sub in self.sublattices:
            parts.append(np.concatenate(
                [np.full(c, self.code(s), dtype=np.int16) for s, c in sub.counts.items()]))
        return np.concatenate(parts)

    def check_composition(self, occ: np.ndarray) -> None:
        """Raise :class:`InputError` if ``occ`` breaks a sublattice's target counts."""
        for k, sub in enumerate(self.sublattices):
            got = np.bincount(occ[self.block(k)], minlength=len(self.species))
            for s, c in sub.counts.items():
                if got[self.code(s)] != c:
                    raise InputError(
                        f"sublattice {sub.name!r}: occupation has {got[self.code(s)]} {s}, "
                        f"target {c}")

    def atoms(self, occ: np.ndarray) -> Atoms:
        """The ordered structure of occupation ``occ`` (vacancies removed)."""
        symbols = list(self.fixed_symbols)
        for i, c in zip(self.searched, occ, strict=True):
            symbols[i] = self.species[int(c)]
        keep = [i for i, s in enumerate(symbols) if s != VACANCY]
        atoms = Atoms(symbols=[symbols[i] for i in keep], scaled_positions=self.frac[keep],
                      cell=self.cell_A, pbc=True)
        return atoms

    def site_lattice(self) -> Atoms:
        """Every template site occupied: each searched site by its sublattice's majority element.

        The ideal lattice behind every ordering (vacancies filled in), in the cell and
        site order of :meth:`atoms`: the perfect structure whose positions of a mobile
        species are its lattice sites (``ionmd mechanism --perfect``; a study's
        ``structure.sites``), so that sites left empty by the ordering are still lattice
        sites. Ties go to the sublattice's own label; a sublattice of vacancies only has
        no element to fill it with and is left empty.
        """
        symbols = list(self.fixed_symbols)
        for sub in self.sublattices:
            present = {s: c for s, c in sub.counts.items() if s != VACANCY and c > 0}
            fill = max(present, key=lambda s: (present[s], s == sub.name)) if present else VACANCY
            for i in sub.sites:
                symbols[int(i)] = fill
        keep = [i for i, s in enumerate(symbols) if s != VACANCY]
        return Atoms(symbols=[symbols[i] for i in keep], scaled_positions=self.frac[keep],
                     cell=self.cell_A, pbc=True)

    def fingerprint(self) -> str:
        """A hash of the template and the targets (identifies a cache)."""
        h = hashlib.sha256()
        h.update(np.round(self.cell_A, 6).tobytes())
        h.update(np.round(self.frac, 6).tobytes())
        h.update("|".join(self.fixed_symbols).encode())
        for sub in self.sublattices:
            h.update(f"{sub.name}:{sorted(sub.counts.items())}:{sub.sites.tolist()}".encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        """JSON-ready description of the sublattices."""
        return {
            "repeats": list(self.repeats),
            "n_sites": len(self.fixed_symbols),
            "sublattices": [
                {"name": s.name, "n_sites": len(s.sites), "counts": dict(s.counts)}
                for s in self.sublattices
            ],
        }


def normalise_species(symbol: str, where: str) -> str:
    """``X`` for any vacancy spelling, else a checked chemical symbol."""
    symbol = symbol.strip()
    if symbol in _VACANCY_SPELLINGS:
        return VACANCY
    return check_element(symbol, where)


def read_parent(path: str | Path) -> Parent:
    """Read a parent cell: CIF (partial occupancies, via pymatgen) or any ASE format."""
    path = Path(path)
    if path.suffix.lower() == ".cif":
        return _read_cif(path)
    atoms = read_structure(path)
    sites = [ParentSite(f, s, {s: 1.0})
             for f, s in zip(atoms.get_scaled_positions(), atoms.get_chemical_symbols(),
                             strict=True)]
    return Parent(atoms.cell.array.copy(), sites, str(path))


def _read_cif(path: Path) -> Parent:
    if not path.is_file():
        raise InputError(f"structure file '{path}' does not exist")
    try:
        import warnings

        from pymatgen.core import Structure
    except ImportError as exc:
        raise InputError(
            f"{path}: reading CIF partial occupancies needs pymatgen "
            f"(`pip install 'ionmd[order]'`): {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            struct = Structure.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types
        raise InputError(f"cannot read CIF '{path}': {exc}") from exc
    groups: dict[tuple, str] = {}
    used: set[str] = set()
    sites = []
    for site in struct:
        occ = {str(el.symbol): float(v) for el, v in site.species.items()}
        total = sum(occ.values())
        if total > 1.0 + 1e-3:
            raise InputError(f"{path}: site at {np.round(site.frac_coords, 4).tolist()} has "
                             f"occupancies summing to {total:.4f} > 1")
        if total < 1.0 - 1e-3:
            occ[VACANCY] = 1.0 - total
        if len(occ) == 1:
            label = next(iter(occ))
        else:
            key = tuple(sorted((s, round(v, 4)) for s, v in occ.items()))
            if key not in groups:
                base = max((s for s in occ if s != VACANCY), key=lambda s: occ[s])
                name, n = base, 1
                while name in used:
                    n += 1
                    name = f"{base}{n}"
                groups[key] = name
                used.add(name)
            label = groups[key]
        used.add(label)
        sites.append(ParentSite(np.array(site.frac_coords, float) % 1.0, label, occ))
    return Parent(np.array(struct.lattice.matrix, float), sites, str(path))


def parse_sublattice_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``LABEL=SP:VALUE,...`` -> (label, {species: value text})."""
    if "=" not in spec:
        raise InputError(
            f"--sublattice {spec!r}: expected LABEL=SP:VALUE[,SP:VALUE...], "
            "e.g. 'Li=Li:0.75,X:0.25'")
    label, body = (p.strip() for p in spec.split("=", 1))
    values: dict[str, str] = {}
    for item in body.split(","):
        if ":" not in item:
            raise InputError(f"--sublattice {spec!r}: item {item!r} is not SP:VALUE")
        sym, val = (p.strip() for p in item.split(":", 1))
        sym = normalise_species(sym, f"--sublattice {spec!r}")
        if sym in values:
            raise InputError(f"--sublattice {spec!r}: species {sym} given twice")
        values[sym] = val
    if not label or not values:
        raise InputError(f"--sublattice {spec!r}: empty label or species list")
    return label, values


def _parse_value(text: str, where: str) -> Fraction | int:
    try:
        if "." in text or "/" in text or "e" in text.lower():
            value = Fraction(text).limit_denominator(10**6)
            if value < 0 or value > 1:
                raise ValueError
            return value
        value = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise InputError(f"{where}: bad value {text!r} (a fraction in [0, 1] such as 0.25 "
                         "or 1/4, or a whole number of sites)") from None


def counts_for(name: str, values: dict[str, float | Fraction | int], n_sites: int,
               as_counts: bool = False) -> dict[str, int]:
    """Whole site counts for target fractions (or counts) on ``n_sites`` sites.

    Raises
    ------
    InputError
        If the fractions do not sum to one, or do not give whole numbers of sites, naming
        the sublattice, the fractions, the site count and a site count that would fit.
    """
    shown = ", ".join(f"{s}={float(v):g}" for s, v in values.items())
    if as_counts:
        counts = {s: int(v) for s, v in values.items()}
        if sum(counts.values()) != n_sites:
            raise InputError(
                f"sublattice {name!r}: counts {shown} sum to {sum(counts.values())}, but the "
                f"supercell has {n_sites} {name} sites")
        return {s: c for s, c in counts.items() if c > 0}
    total = float(sum(float(v) for v in values.values()))
    if abs(total - 1.0) > 1e-3:
        raise InputError(f"sublattice {name!r}: fractions {shown} sum to {total:.4f}, not 1")
    exact = {s: float(v) * n_sites for s, v in values.items()}
    counts = {s: int(round(x)) for s, x in exact.items()}
    bad = [s for s, x in exact.items() if abs(x - round(x)) > COUNT_TOL]
    if bad or sum(counts.values()) != n_sites:
        fracs = [Fraction(float(v)).limit_denominator(1000) for v in values.values()]
        lcm = int(np.lcm.reduce([f.denominator for f in fracs]))
        implied = ", ".join(f"{s}={x:.3g}" for s, x in exact.items())
        raise InputError(
            f"sublattice {name!r}: fractions {shown} do not fit the supercell's {n_sites} "
            f"{name} sites (they would need {implied} sites); the number of {name} sites "
            f"must be a multiple of {lcm}: choose other --supercell repeats")
    return {s: c for s, c in counts.items() if c > 0}


def build_problem(parent: Parent, repeats: str | int | tuple[int, int, int] = 1,
                  sublattice_specs: list[str] | tuple[str, ...] = ()) -> OrderProblem:
    """The supercell template and sublattices of ``parent`` repeated ``repeats`` times.

    Sublattices are the disordered site groups of the parent plus the labels named in
    ``sublattice_specs`` (which override a group's targets).

    Raises
    ------
    InputError
        For an unknown label, impossible compositions or nothing to search.
    """
    reps = parse_supercell(repeats)
    labels = parent.labels()
    specs: dict[str, dict[str, str]] = {}
    for spec in sublattice_specs:
        label, values = parse_sublattice_spec(spec)
        if label not in labels:
            raise InputError(f"--sublattice {spec!r}: no site labelled {label!r} in "
                             f"{parent.source or 'the structure'} (labels: {', '.join(labels)})")
        specs[label] = values
    shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1])
                       for k in range(reps[2])], float)
    frac, site_label = [], []
    for shift in shifts:
        for s in parent.sites:
            frac.append((s.frac + shift) / np.array(reps, float))
            site_label.append(s.label)
    frac_arr = np.array(frac) % 1.0
    cell = np.diag(np.array(reps, float)) @ parent.cell_A
    first_occ = {}
    for s in parent.sites:
        first_occ.setdefault(s.label, s.occupancy)
    sublattices = []
    fixed = []
    searched_labels = [lb for lb in labels if lb in specs or len(first_occ[lb]) > 1]
    for lb in labels:
        idx = np.array([i for i, x in enumerate(site_label) if x == lb], int)
        if lb in specs:
            where = f"--sublattice {lb}"
            parsed = {s: _parse_value(v, where) for s, v in specs[lb].items()}
            as_counts = all(isinstance(v, int) for v in parsed.values())
            if not as_counts and any(isinstance(v, int) and v not in (0, 1)
                                     for v in parsed.values()):
                raise InputError(f"{where}: mix of fractions and counts "
                                 f"({specs[lb]}); use one or the other")
            counts = counts_for(lb, parsed, len(idx), as_counts=as_counts)
        elif lb in searched_labels:
            counts = counts_for(lb, first_occ[lb], len(idx))
        else:
            continue
        sublattices.append(Sublattice(lb, idx, counts))
    fixed = ["" if lb in searched_labels else lb for lb in site_label]
    sublattices = [s for s in sublattices if len(s.counts) > 1 or s.name in specs]
    if not any(len(s.counts) > 1 for s in sublattices):
        raise InputError(
            f"{parent.source or 'structure'}: nothing to search (no partially occupied site "
            "and no --sublattice with two or more species)")
    species = sorted({s for sub in sublattices for s in sub.counts})
    return OrderProblem(cell, frac_arr, fixed, sublattices, species, reps, parent.source)
