"""Lattice and interstitial sites of the mobile species, for any lattice.

Lattice sites
    Every symmetry-distinct reference position of the mobile species is a
    *sublattice*, labelled ``<species>(<k>)`` (``Li(1)``, ``Li(2)``, ...) in the
    order of the Wyckoff letters that spglib gives the perfect structure; the
    letter is recorded. The reference may be the defective (even relaxed or
    vibrating) cell: its missing sites are filled in from the perfect cell, either
    given (``perfect``: the same cell or one that tiles it) or reconstructed: inside
    a supercell, the lattice translations that map at least 90% of the framework
    atoms and of the mobile ions onto atoms of their species (so a few defects do
    not break them, an ordering of the mobile species does) group the atoms into
    orbits, each with its mean position repeated by every translation. An orbit of
    the mobile species at least half occupied is a lattice sublattice (so a vacancy
    is still a lattice site); a less occupied one holds interstitial ions. A cell
    without inner translations uses the space group of its framework (the atoms
    that are not mobile) instead.

Interstitial sites
    The voids of the perfect structure: Voronoi vertices of all atoms (periodic
    images included) whose distance to the nearest atom is at least ``rel_radius``
    times the largest such distance, plus the positions of interstitial ions of
    the reference, closed under the space group, merged within
    ``min_site_sep_A`` and kept only when at least ``min_site_sep_A`` from a
    lattice site. Each symmetry-distinct group is labelled ``i(<k>)``. Sites given
    by the user replace them (an empty list means: no interstitial sites).

Symmetry operations that map the site set onto itself are kept with it
(:class:`SiteSymmetry`), so that hops can be grouped by symmetry equivalence
(:mod:`ionmd.analysis.hops`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import spglib
from scipy.spatial import Voronoi, cKDTree

from ionmd.errors import InputError
from ionmd.lammpsio.datafile import ReferenceStructure
from ionmd.results import Result
from ionmd.symmetry import SpaceGroupOps, orbit_labels

_IMAGES = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=float)

DEFAULT_SYMPREC_A = 0.1
"""Default position tolerance of the symmetry search, Å."""


@dataclass
class Sublattice(Result):
    """One symmetry-distinct set of sites.

    Attributes
    ----------
    label : str
        ``Li(1)``-style for lattice sublattices, ``i(1)``-style for interstitial ones.
    species : str
        Species that occupies the sublattice in the perfect structure ("" for interstitial).
    kind : str
        ``"L"`` (lattice) or ``"I"`` (interstitial).
    wyckoff : str
        Wyckoff letter in the space group of the perfect structure ("?" when unknown).
    n_sites : int
        Sites of this sublattice in the reference cell.
    n_occupied : int
        Mobile ions of the reference structure on these sites.
    """

    label: str
    species: str
    kind: str
    wyckoff: str
    n_sites: int
    n_occupied: int


@dataclass
class SiteSymmetry:
    """Space-group operations of the perfect structure that map the site set onto itself.

    Attributes
    ----------
    ops : SpaceGroupOps
        The operations (one per rotation part, and the lattice translations), in the
        fractional coordinates of the site set's cell; :class:`ionmd.symmetry.HopOrbits`
        groups hops with them.
    tol_A : float
        The distance within which an image of a site counted as a site, Å.
    spacegroup : str
        International symbol, e.g. ``P6/mmm`` ("" when not determined).
    unique_axis : ndarray (3,) or None
        Unit vector of the unique 3-, 4- or 6-fold axis (hexagonal, trigonal and
        tetragonal lattices), Cartesian; None when there is none (cubic, lower).
    """

    ops: SpaceGroupOps
    tol_A: float
    spacegroup: str = ""
    unique_axis: np.ndarray | None = None

    @property
    def rot_cart(self) -> np.ndarray:
        """Row-vector Cartesian maps of the rotation parts (``v @ rot_cart[g]``)."""
        return self.ops.rot_cart


@dataclass
class SiteSet:
    """Sites of the mobile species in the reference cell.

    Attributes
    ----------
    frac : ndarray (n_sites, 3)
        Fractional coordinates in the reference cell, in [0, 1).
    kind : ndarray of str (n_sites,)
        ``"L"`` (lattice) or ``"I"`` (interstitial).
    cell_A : ndarray (3, 3)
        Reference cell rows, Å.
    sublattice : ndarray of int (n_sites,)
        Index into ``sublattices`` of each site.
    sublattices : list[Sublattice]
        The symmetry-distinct groups of sites.
    occupied : ndarray of bool (n_sites,)
        Whether a mobile ion of the reference sits on the site.
    symmetry : SiteSymmetry or None
        Operations that map the sites onto each other (None: each site is its own class).
    notes : list[str]
        How the sites were found (e.g. a vacancy filled in, a fallback taken).
    """

    frac: np.ndarray
    kind: np.ndarray
    cell_A: np.ndarray
    sublattice: np.ndarray | None = None
    sublattices: list[Sublattice] = field(default_factory=list)
    occupied: np.ndarray | None = None
    symmetry: SiteSymmetry | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frac = np.asarray(self.frac, dtype=float).reshape(-1, 3)
        self.kind = np.asarray(self.kind, dtype=str)
        if self.sublattice is None:  # one sublattice per kind
            self.sublattice = np.where(self.kind == "L", 0, 1)
            self.sublattices = [Sublattice("L", "", "L", "?", self.n_lattice, 0),
                                Sublattice("i", "", "I", "?", self.n_interstitial, 0)]
        if self.occupied is None:
            self.occupied = np.zeros(len(self.frac), dtype=bool)

    @property
    def n_lattice(self) -> int:
        return int(np.sum(self.kind == "L"))

    @property
    def n_interstitial(self) -> int:
        return int(np.sum(self.kind == "I"))

    @property
    def n_vacancies(self) -> int:
        """Lattice sites without an ion in the reference structure."""
        return int(np.sum((self.kind == "L") & ~self.occupied))

    @property
    def n_interstitial_ions(self) -> int:
        """Reference ions on interstitial sites."""
        return int(np.sum((self.kind == "I") & self.occupied))

    def labels(self) -> np.ndarray:
        """Sublattice label of each site."""
        names = np.array([s.label for s in self.sublattices])
        return names[self.sublattice]

    def cartesian(self) -> np.ndarray:
        return self.frac @ self.cell_A

    def nearest_site_distance_A(self) -> np.ndarray:
        """Distance from each site to its nearest other site (periodic), Å."""
        tree = cKDTree((self.frac[None] + _IMAGES[:, None]).reshape(-1, 3) @ self.cell_A)
        d, _ = tree.query(self.cartesian(), k=2)
        return d[:, 1]

    def min_separation_A(self) -> float:
        """Shortest periodic distance between two sites, Å."""
        tree = cKDTree((self.frac[None] + _IMAGES[:, None]).reshape(-1, 3) @ self.cell_A)
        d, _ = tree.query(self.cartesian(), k=2)
        return float(d[:, 1].min())

    def summary(self) -> list[str]:
        """One line per sublattice."""
        sg = f" ({self.symmetry.spacegroup})" if self.symmetry and self.symmetry.spacegroup else ""
        out = [f"sites{sg}: {self.n_lattice} lattice ({self.n_vacancies} vacant), "
               f"{self.n_interstitial} interstitial ({self.n_interstitial_ions} occupied)"]
        for s in self.sublattices:
            out.append(f"  {s.label:8s} {'lattice' if s.kind == 'L' else 'interstitial':12s} Wyckoff {s.wyckoff:3s} "
                       f"{s.n_sites:5d} sites, {s.n_occupied} occupied")
        return out


def _periodic_tree(frac: np.ndarray, cell: np.ndarray) -> tuple[cKDTree, np.ndarray]:
    imgs = (frac[None] + _IMAGES[:, None]).reshape(-1, 3)
    idx = np.tile(np.arange(len(frac)), len(_IMAGES))
    return cKDTree(imgs @ cell), idx


def _nearest(points_frac: np.ndarray, sites_frac: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Periodic distance (Å) and index of the nearest site of each point."""
    if len(sites_frac) == 0:
        return np.full(len(points_frac), np.inf), np.full(len(points_frac), -1)
    tree, idx = _periodic_tree(sites_frac, cell)
    d, k = tree.query(np.mod(points_frac, 1.0) @ cell)
    return d, idx[k]


def _min_dist_A(x: np.ndarray, pts: np.ndarray, cell: np.ndarray) -> float:
    """Shortest distance from one fractional point to a set (minimum image by rounding; for short distances)."""
    d = pts - x
    d -= np.round(d)
    return float(np.min(np.linalg.norm(d @ cell, axis=1)))


def empty_sites(frac_all: np.ndarray, cell: np.ndarray, rel_radius: float = 0.75) -> np.ndarray:
    """Fractional coordinates of the largest empty spaces (Voronoi vertices) of a periodic structure."""
    imgs = (frac_all[None] + _IMAGES[:, None]).reshape(-1, 3)
    keep = np.all((imgs > -0.35) & (imgs < 1.35), axis=1)
    vor = Voronoi(imgs[keep] @ cell)
    vf = np.linalg.solve(cell.T, vor.vertices.T).T
    inside = np.all((vf >= -1e-6) & (vf < 1 - 1e-6), axis=1)
    vf = np.mod(vf[inside], 1.0)
    r, _ = _nearest(vf, frac_all, cell)
    if len(r) == 0:
        return np.zeros((0, 3))
    sel = r >= rel_radius * r.max()
    order = np.argsort(-r[sel])
    return vf[sel][order]


def _merge(frac: np.ndarray, cell: np.ndarray, tol_A: float) -> np.ndarray:
    """Keep the first of any group of points closer than ``tol_A`` (periodic)."""
    frac = np.mod(np.asarray(frac, dtype=float).reshape(-1, 3), 1.0)
    if len(frac) < 2:
        return frac
    tree, idx = _periodic_tree(frac, cell)
    drop = np.zeros(len(frac), dtype=bool)
    for i, near in enumerate(tree.query_ball_point(frac @ cell, tol_A)):
        if drop[i]:
            continue
        j = idx[near]
        drop[j[j > i]] = True
    return frac[~drop]


def _orbit(x: np.ndarray, rot: np.ndarray, trans: np.ndarray, cell: np.ndarray, tol_A: float) -> np.ndarray:
    """Distinct images of the fractional point ``x`` under the operations (R, t).

    Images closer than ``tol_A`` are one point, their (periodic) centroid: a point near a
    special position becomes that position, so the orbit stays symmetric.
    """
    img = np.mod(np.einsum("gij,j->gi", rot, x) + trans, 1.0)
    _, first = np.unique(np.round(img * 1e4).astype(np.int64) % 10000, axis=0, return_index=True)
    img = img[np.sort(first)]  # exact images coincide: drop them before the tolerance merge
    if len(img) < 2:
        return img
    tree, idx = _periodic_tree(img, cell)
    taken = np.zeros(len(img), dtype=bool)
    out = []
    for i, near in enumerate(tree.query_ball_point(img @ cell, tol_A)):
        if taken[i]:
            continue
        j = np.unique(idx[near])
        j = j[~taken[j]]
        taken[j] = True
        d = img[j] - img[i]
        d -= np.round(d)
        out.append(np.mod(img[i] + d.mean(axis=0), 1.0))
    return np.asarray(out)


def _spglib_cell(cell: np.ndarray, frac: np.ndarray, symbols: list[str]) -> tuple:
    names = sorted(set(symbols))
    return (cell, np.mod(frac, 1.0), [names.index(s) + 1 for s in symbols])


def _spglib(func: str, spg_cell: tuple, symprec_A: float):
    """Call a spglib function; None when it finds no symmetry (its deprecation notices are silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return getattr(spglib, func)(spg_cell, symprec=symprec_A)
        except Exception:  # newer spglib raises SpglibError instead of returning None
            return None


def _symmetry(cell: np.ndarray, frac: np.ndarray, symbols: list[str], symprec_A: float):
    """spglib operations (rotations, translations) of a structure; identity only if it finds none."""
    if len(frac) == 0:
        return np.eye(3, dtype=int)[None], np.zeros((1, 3))
    sym = _spglib("get_symmetry", _spglib_cell(cell, frac, symbols), symprec_A)
    if sym is None:
        return np.eye(3, dtype=int)[None], np.zeros((1, 3))
    return np.asarray(sym["rotations"]), np.asarray(sym["translations"])


def read_perfect(path: str | Path) -> ReferenceStructure:
    """Read a perfect (defect-free) structure: a LAMMPS data file or any ASE-readable file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"perfect structure file '{p}' does not exist")
    if p.suffix in (".data", ".lmp") or p.name.startswith("data."):
        from ionmd.lammpsio.datafile import read_data_file

        return read_data_file(p)
    from ionmd.driver.structure import read_structure

    atoms = read_structure(p)
    sym = atoms.get_chemical_symbols()
    names = sorted(set(sym))
    return ReferenceStructure(np.asarray(atoms.cell[:], dtype=float), np.zeros(3), atoms.positions.copy(),
                              np.array([names.index(s) + 1 for s in sym]), sym,
                              {k + 1: s for k, s in enumerate(names)}, str(p))


def _frac_of(ref: ReferenceStructure) -> np.ndarray:
    return np.mod(np.linalg.solve(ref.cell_A.T, (ref.positions_A - ref.origin_A).T).T, 1.0)


def _perfect_in_reference(perfect: ReferenceStructure, ref: ReferenceStructure, frac_ref: np.ndarray,
                          tol_A: float) -> tuple[np.ndarray, list[str]]:
    """The perfect structure tiled onto the reference cell and shifted onto its atoms.

    Returns fractional coordinates (reference cell) and symbols.
    """
    cell, pcell = ref.cell_A, perfect.cell_A
    m = cell @ np.linalg.inv(pcell)
    if not np.allclose(m, np.round(m), atol=0.02):
        raise InputError(f"perfect structure '{perfect.path}': its cell does not tile the reference cell "
                         f"'{ref.path}' (reference = M x perfect with M = {np.round(m, 3).tolist()}, not integer)")
    m = np.round(m)
    n = int(round(abs(np.linalg.det(m))))
    pf = _frac_of(perfect)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float) @ m
    lo, hi = np.floor(corners.min(axis=0)) - 1, np.ceil(corners.max(axis=0)) + 1
    grid = np.array([[i, j, k] for i in range(int(lo[0]), int(hi[0])) for j in range(int(lo[1]), int(hi[1]))
                     for k in range(int(lo[2]), int(hi[2]))], dtype=float)
    tiled = (pf[None] + grid[:, None]).reshape(-1, 3) @ pcell @ np.linalg.inv(cell)
    syms = np.tile(np.array(perfect.symbols, dtype=object), len(grid))
    inside = np.all((tiled > -1e-6) & (tiled < 1 - 1e-6), axis=1)
    tiled, syms = np.mod(tiled[inside], 1.0), syms[inside]
    if len(tiled) != n * len(pf):
        raise InputError(f"perfect structure '{perfect.path}': tiling it onto the reference cell gave "
                         f"{len(tiled)} atoms instead of {n * len(pf)}")
    ref_sym = np.array(ref.symbols, dtype=object)
    # shift the perfect structure so that the reference atoms of its rarest species sit on its atoms
    species = [s for s in sorted(set(ref.symbols), key=list(ref.symbols).count) if s in set(syms)]
    if not species:
        raise InputError(f"perfect structure '{perfect.path}' shares no species with the reference '{ref.path}'")
    anchor = frac_ref[np.flatnonzero(ref_sym == species[0])[0]]
    best, best_shift = -1.0, np.zeros(3)
    for cand in tiled[syms == species[0]]:
        shift = anchor - cand
        hit = 0
        for s in set(ref.symbols) & set(syms):
            d, _ = _nearest(frac_ref[ref_sym == s], tiled[syms == s] + shift, cell)
            hit += int(np.sum(d < max(tol_A, 0.5)))
        if hit > best:
            best, best_shift = hit, shift
    if best < 0.8 * len(frac_ref):
        raise InputError(f"perfect structure '{perfect.path}' does not match the reference '{ref.path}': "
                         f"only {int(best)} of {len(frac_ref)} reference atoms lie on its atoms")
    return np.mod(tiled + best_shift, 1.0), [str(s) for s in syms]


def _reconstruct_perfect(frac_all: np.ndarray, symbols: list[str], is_mob: np.ndarray, cell: np.ndarray,
                         symprec_A: float, tol_A: float, notes: list[str]):
    """The perfect structure behind a (defective, relaxed or vibrating) reference.

    Inside a supercell the lattice translations (:func:`_approximate_translations`)
    give each atom's orbit with a clean mean position; framework orbits are kept whole
    and mobile orbits at least half occupied are lattice sites (their vacant members
    filled in). Less occupied mobile orbits hold interstitial ions. A cell without
    inner translations falls back to the space group of its framework
    (:func:`_lattice_orbits`).

    Returns framework positions and symbols, lattice-site positions and species, and
    the positions of interstitial ions.
    """
    names = np.array(symbols)
    trans = _approximate_translations(frac_all, names, [~is_mob, is_mob], cell, tol_A)
    if len(trans) == 1:
        lat, lat_sym, extra = _lattice_orbits(frac_all, symbols, is_mob, cell, symprec_A, notes)
        return frac_all[~is_mob], [str(x) for x in names[~is_mob]], lat, lat_sym, extra
    fw, fw_sym, lat, lat_sym, extra = [], [], [], [], []
    n_filled: dict[str, int] = {}
    for sp, pos, members in _translation_orbits(frac_all, names, trans, cell, tol_A):
        full = len(members) >= 0.5 * len(trans)
        if not is_mob[members[0]]:
            if full:
                fw.append(pos)
                fw_sym += [sp] * len(pos)
            continue  # a framework atom off its lattice is not part of the perfect structure
        if full:
            lat.append(pos)
            lat_sym += [sp] * len(pos)
            if len(members) < len(pos):
                n_filled[sp] = n_filled.get(sp, 0) + len(pos) - len(members)
        else:
            extra.append(frac_all[members])
    for sp, n in n_filled.items():
        notes.append(f"{n} vacant {sp} site(s) filled in by the lattice translations of the cell")
    stack = lambda x: np.vstack(x) if x else np.zeros((0, 3))  # noqa: E731
    return stack(fw), fw_sym, stack(lat), lat_sym, stack(extra)


def _lattice_orbits(frac_all: np.ndarray, symbols: list[str], is_mob: np.ndarray, cell: np.ndarray,
                    symprec_A: float, notes: list[str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Lattice sites (frac, species) reconstructed by the framework's symmetry, and leftover ion positions.

    Returns the lattice-site positions, their species and the positions of reference
    mobile ions on sparsely occupied orbits (interstitial ions).
    """
    mob = frac_all[is_mob]
    mob_sym = [s for s, m in zip(symbols, is_mob, strict=True) if m]
    fw = frac_all[~is_mob]
    tol = max(2 * symprec_A, 0.3)
    if len(fw) == 0:
        notes.append("no framework atoms and no lattice translation inside the cell: the lattice sites are "
                     "the reference positions (give the perfect cell to fill a vacancy in)")
        return mob, mob_sym, np.zeros((0, 3))
    rot, trans = _symmetry(cell, fw, [s for s, m in zip(symbols, is_mob, strict=True) if not m], symprec_A)
    # keep the operations that also map (almost all) mobile ions onto ions of their species: a few
    # defects may mismatch, an ordering of the mobile species (which lowers the symmetry) may not
    mob_tree, mob_idx = _periodic_tree(mob, cell)
    names = np.array(mob_sym)
    probe = np.unique(np.linspace(0, len(mob) - 1, min(len(mob), 64)).round().astype(int))  # a sample suffices
    keep = np.zeros(len(rot), dtype=bool)
    for c in range(0, len(rot), 256):  # batches of operations, one tree query each
        img = np.mod(np.einsum("gij,nj->gni", rot[c:c + 256], mob[probe]) + trans[c:c + 256, None], 1.0)
        d, k = mob_tree.query(img.reshape(-1, 3) @ cell)
        ok = ((d < tol) & (names[mob_idx[k]] == np.tile(names[probe], len(img)))).reshape(len(img), -1)
        keep[c:c + 256] = ok.mean(axis=1) >= 0.9
    rot, trans = rot[keep], trans[keep]
    lat, lat_sym, extra = [], [], []
    done = np.zeros(len(mob), dtype=bool)
    for i in range(len(mob)):
        if done[i]:
            continue
        orb = _orbit(mob[i], rot, trans, cell, tol)
        members = np.zeros(len(mob), dtype=bool)
        for near in mob_tree.query_ball_point(orb @ cell, tol):
            members[mob_idx[near]] = True
        done |= members
        if members.sum() >= 0.5 * len(orb):
            lat.append(orb)
            lat_sym += [mob_sym[i]] * len(orb)
            if members.sum() < len(orb):
                notes.append(f"{len(orb) - int(members.sum())} vacant {mob_sym[i]} site(s) filled in by the "
                             "symmetry of the framework")
        else:
            extra.append(mob[members])
    lat_f = np.vstack(lat) if lat else np.zeros((0, 3))
    return lat_f, lat_sym, np.vstack(extra) if extra else np.zeros((0, 3))


def _approximate_translations(frac: np.ndarray, names: np.ndarray, groups: list[np.ndarray], cell: np.ndarray,
                              tol_A: float) -> np.ndarray:
    """Translations of the cell that map at least 90% of the atoms of each group onto atoms of their species.

    A few vacancies, interstitials or relaxed atoms do not break them; an ordering that
    a translation would break (of the mobile species, say) does. The set is closed as a
    group (the translation onto a vacant site is a sum of two found ones).
    """
    tree, idx = _periodic_tree(frac, cell)
    counts = {sp: int(np.sum(names == sp)) for sp in set(names.tolist())}
    ref_sp = min((sp for sp in counts if counts[sp] > 1), key=lambda sp: counts[sp], default=None)
    if ref_sp is None:
        return np.zeros((1, 3))
    first = np.flatnonzero(names == ref_sp)
    found = [np.zeros(3)]
    for j in first[1:]:
        t = frac[j] - frac[first[0]]
        for _ in range(2):  # refine the candidate by the mean displacement of the atoms it matches
            d, k = tree.query(np.mod(frac + t, 1.0) @ cell)
            ok = (d < tol_A) & (names[idx[k]] == names)
            if not np.any(ok):
                break
            shift = frac[idx[k[ok]]] - frac[ok] - t
            t = t + (shift - np.round(shift)).mean(axis=0)
        d, k = tree.query(np.mod(frac + t, 1.0) @ cell)
        ok = (d < tol_A) & (names[idx[k]] == names)
        if all(np.mean(ok[g]) >= 0.9 for g in groups if np.any(g)):
            found.append(t)
    trans = np.mod(np.asarray(found), 1.0)
    for _ in range(2):
        sums = np.mod(trans[:, None] + trans[None], 1.0).reshape(-1, 3)
        key = np.round(sums * 1e3).astype(np.int64) % 1000
        _, first_idx = np.unique(key, axis=0, return_index=True)
        cand = sums[first_idx]
        d, _ = _nearest(cand, trans, cell)
        new = cand[d > tol_A]
        if len(new) == 0:
            break
        trans = np.vstack([trans, _merge(new, cell, tol_A)])
    # the translations of a group of order N are multiples of 1/N: snap the noise of the atoms away
    snapped = np.mod(np.round(trans * len(trans)) / len(trans), 1.0)
    err = snapped - trans
    err -= np.round(err)
    if np.all(np.linalg.norm(err @ cell, axis=1) < tol_A) and len(np.unique(np.round(snapped * len(trans)).astype(
            np.int64) % len(trans), axis=0)) == len(trans):
        trans = snapped
    return trans


def _translation_orbits(frac: np.ndarray, names: np.ndarray, trans: np.ndarray, cell: np.ndarray, tol_A: float
                        ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Atoms grouped into orbits of the translations: (species, clean positions, member atoms) per orbit.

    The clean positions are the orbit's mean position (vibration and relaxation average
    out) repeated by every translation, so a vacant member is filled in.
    """
    tree, idx = _periodic_tree(frac, cell)
    taken = np.zeros(len(frac), dtype=bool)
    out = []
    for i in range(len(frac)):
        if taken[i]:
            continue
        d, k = tree.query(np.mod(frac[i] + trans, 1.0) @ cell)
        j = idx[k]
        hit = (d < tol_A) & (names[j] == names[i]) & ~taken[j]
        hit[0] = True
        members, t = j[hit], trans[hit]
        members[0], t[0] = i, 0.0
        taken[members] = True
        rel = frac[members] - t - frac[i]
        rel -= np.round(rel)
        rep = frac[i] + rel.mean(axis=0)
        out.append((str(names[i]), np.mod(rep + trans, 1.0), members))
    return out


def _unique_axis(rot_cart: np.ndarray) -> np.ndarray | None:
    axes = []
    for r in rot_cart:
        p = r * np.sign(np.linalg.det(r))
        tr = np.trace(p)
        if -0.5 < tr < 2.5:  # proper rotation of order 3, 4 or 6
            w, v = np.linalg.eig(p.T)
            a = np.real(v[:, np.argmin(np.abs(w - 1))])
            axes.append(a / np.linalg.norm(a))
    if not axes:
        return None
    a0 = axes[0]
    if all(abs(abs(float(a @ a0)) - 1) < 1e-3 for a in axes):
        return a0 * np.sign(a0[np.argmax(np.abs(a0))])
    return None


def site_symmetry(frac: np.ndarray, cell: np.ndarray, rot: np.ndarray, trans: np.ndarray, tol_A: float,
                  spacegroup: str = "") -> SiteSymmetry:
    """The operations (R, t) that map ``frac`` onto itself (see :class:`SiteSymmetry`).

    One operation per rotation part is kept (the first that maps the sites onto
    themselves), and every pure translation that does.
    """
    tree, _ = _periodic_tree(frac, cell)

    def maps(g: int) -> bool:
        d, _ = tree.query(np.mod(frac @ rot[g].T + trans[g], 1.0) @ cell)
        return not np.any(d > tol_A)

    groups: dict[bytes, list[int]] = {}
    for g, r in enumerate(rot):
        groups.setdefault(np.asarray(r, dtype=np.int64).tobytes(), []).append(g)
    ident = np.eye(3, dtype=np.int64).tobytes()
    reps = [next((g for g in members if maps(g)), None) for key, members in groups.items() if key != ident]
    lattice = [trans[g] for g in groups.get(ident, []) if maps(g)]
    reps = [g for g in reps if g is not None]
    ops = SpaceGroupOps.factor(np.concatenate([np.eye(3)[None], np.asarray(rot, dtype=float)[reps]]),
                               np.concatenate([np.zeros((1, 3)), np.asarray(trans, dtype=float)[reps]]),
                               cell, lattice_translations=np.asarray(lattice).reshape(-1, 3))
    return SiteSymmetry(ops, float(tol_A), spacegroup, _unique_axis(ops.rot_cart))


def find_sites(ref: ReferenceStructure, species: list[str], interstitial_frac: np.ndarray | None = None,
               rel_radius: float = 0.75, min_site_sep_A: float = 1.0, perfect: ReferenceStructure | None = None,
               symprec_A: float = DEFAULT_SYMPREC_A) -> SiteSet:
    """Lattice and interstitial sites of ``species`` in ``ref`` (see the module docstring).

    Parameters
    ----------
    ref : ReferenceStructure
        The reference structure (perfect or defective) in the cell of the trajectory.
    species : list of str
        The mobile species.
    interstitial_frac : ndarray (n, 3), optional
        Interstitial sites given by the user (fractional, reference cell); an empty
        array means no interstitial sites. None: found automatically.
    rel_radius : float
        Keep Voronoi vertices whose empty radius is at least this fraction of the largest.
    min_site_sep_A : float
        Candidates closer than this to an earlier one are merged.
    perfect : ReferenceStructure, optional
        The perfect structure (the reference cell or a cell that tiles it); its mobile
        positions are the lattice sites. Default: reconstructed by symmetry.
    symprec_A : float
        Position tolerance of the symmetry search, Å.

    Raises
    ------
    InputError
        If the reference has no atom of the species or the perfect cell does not fit it.
    """
    is_mob = np.array([s in species for s in ref.symbols])
    if not np.any(is_mob):
        raise InputError(f"reference '{ref.path}' has no atom of species {species} "
                         f"(it has {sorted(set(ref.symbols))})")
    cell = ref.cell_A
    notes: list[str] = []
    frac_all = _frac_of(ref)
    mob = frac_all[is_mob]
    # matching tolerance: relaxed or vibrating atoms still match their site
    d_min = float(np.min(_periodic_tree(frac_all, cell)[0].query(frac_all @ cell, k=2)[0][:, 1])) \
        if len(frac_all) > 1 else 1.0
    tol = max(2 * symprec_A, 0.25 * d_min)
    if perfect is not None:
        pf, psym = _perfect_in_reference(perfect, ref, frac_all, tol)
        pmob = np.array([s in species for s in psym])
        if not np.any(pmob):
            raise InputError(f"perfect structure '{perfect.path}' has no atom of species {species}")
        lat, lat_sym = pf[pmob], [s for s, m in zip(psym, pmob, strict=True) if m]
        fw, fw_sym = pf[~pmob], [s for s, m in zip(psym, pmob, strict=True) if not m]
        d, _ = _nearest(mob, lat, cell)
        extra = mob[d > min_site_sep_A]
        notes.append(f"lattice sites from the perfect structure '{perfect.path}'")
    else:
        fw, fw_sym, lat, lat_sym, extra = _reconstruct_perfect(frac_all, list(ref.symbols), is_mob, cell, symprec_A,
                                                               tol, notes)
    # the perfect structure: its space group labels the sublattices and the voids
    p_frac = np.vstack([fw, lat])
    p_sym = fw_sym + lat_sym
    ds = _spglib("get_symmetry_dataset", _spglib_cell(cell, p_frac, p_sym), symprec_A)
    if ds is None:
        notes.append("spglib found no symmetry for the perfect structure: one sublattice per species")
        rot, trans, sg = np.eye(3, dtype=int)[None], np.zeros((1, 3)), ""
        wyck = ["?"] * len(p_frac)
        equiv = np.array([p_sym.index(s) for s in p_sym])
    else:
        rot, trans, sg = np.asarray(ds.rotations), np.asarray(ds.translations), str(ds.international)
        wyck, equiv = list(ds.wyckoffs), np.asarray(ds.equivalent_atoms)
    n_fw = len(fw)
    lat_orbit = equiv[n_fw:]
    d_occ, _ = _nearest(lat, mob, cell)
    lat_occ = d_occ < tol
    # lattice sublattices, ordered by species, Wyckoff letter, first position; labelled by ionmd.symmetry's rule
    labels = orbit_labels(p_sym, wyck, equiv)
    keys = sorted(set(lat_orbit.tolist()), key=lambda o: (lat_sym[int(np.flatnonzero(lat_orbit == o)[0])],
                                                          wyck[o], o))
    sublattices: list[Sublattice] = []
    sub_of = np.zeros(len(lat), dtype=int)
    for o in keys:
        members = lat_orbit == o
        sp = lat_sym[int(np.flatnonzero(members)[0])]
        sub_of[members] = len(sublattices)
        sublattices.append(Sublattice(labels[o], sp, "L", str(wyck[o]), int(members.sum()),
                                      int(np.sum(lat_occ & members))))
    # interstitial sites
    if interstitial_frac is not None:
        inter = np.mod(np.asarray(interstitial_frac, dtype=float).reshape(-1, 3), 1.0)
        if len(inter):
            d, _ = _nearest(lat, inter, cell)
            keep = d >= 0.5
            lat, lat_sym, sub_of, lat_occ = lat[keep], [s for s, k in zip(lat_sym, keep, strict=True) if k], \
                sub_of[keep], lat_occ[keep]
            for k, s in enumerate(sublattices):
                s.n_sites = int(np.sum(sub_of == k))
                s.n_occupied = int(np.sum(lat_occ & (sub_of == k)))
        notes.append(f"{len(inter)} interstitial site(s) given")
    else:
        cand = [extra, empty_sites(p_frac, cell, rel_radius)] if len(p_frac) else [extra]
        pts = _merge(np.vstack(cand), cell, min_site_sep_A)
        closed = np.zeros((0, 3))
        for x in pts:  # close under the space group, one orbit per new candidate
            if len(closed) and _min_dist_A(x, closed, cell) < min_site_sep_A:
                continue
            closed = np.vstack([closed, _orbit(x, rot, trans, cell, min_site_sep_A)])
        inter = closed
        if len(inter) and len(lat):
            d, _ = _nearest(inter, lat, cell)
            inter = inter[d >= min_site_sep_A]
    inter_sub, inter_subs = _interstitial_sublattices(inter, mob, p_frac, p_sym, cell, rot, trans, symprec_A, tol,
                                                      len(sublattices))
    sublattices += inter_subs
    frac = np.vstack([lat, inter]) if len(inter) else lat
    kind = np.array(["L"] * len(lat) + ["I"] * len(inter))
    occupied = np.concatenate([lat_occ, _nearest(inter, mob, cell)[0] < tol]) if len(inter) else lat_occ
    sub = np.concatenate([sub_of, inter_sub]).astype(int)
    symmetry = site_symmetry(frac, cell, rot, trans, tol, sg)
    return SiteSet(frac, kind, cell, sub, sublattices, occupied, symmetry, notes)


def _interstitial_sublattices(inter: np.ndarray, mob: np.ndarray, p_frac: np.ndarray, p_sym: list[str],
                              cell: np.ndarray, rot: np.ndarray, trans: np.ndarray, symprec_A: float, tol: float,
                              offset: int) -> tuple[np.ndarray, list[Sublattice]]:
    """Group interstitial sites into symmetry orbits ``i(1)``, ``i(2)``, ... with their Wyckoff letters."""
    if len(inter) == 0:
        return np.zeros(0, dtype=int), []
    group = np.full(len(inter), -1)
    n = 0
    for i in range(len(inter)):
        if group[i] >= 0:
            continue
        orb = _orbit(inter[i], rot, trans, cell, tol)
        d, _ = _nearest(inter, orb, cell)
        group[(d < tol) & (group < 0)] = n
        n += 1
    wyck = ["?"] * n
    ds = _spglib("get_symmetry_dataset", _spglib_cell(cell, np.vstack([p_frac, inter]), p_sym + ["X"] * len(inter)),
                 symprec_A)
    if ds is not None and len(ds.rotations) == len(rot):
        for g in range(n):
            wyck[g] = str(ds.wyckoffs[len(p_frac) + int(np.flatnonzero(group == g)[0])])
    occ = _nearest(inter, mob, cell)[0] < tol
    subs = [Sublattice(f"i({g + 1})", "", "I", wyck[g], int(np.sum(group == g)), int(np.sum(occ & (group == g))))
            for g in range(n)]
    return group + offset, subs


def parse_fractional_sites(text: str) -> np.ndarray:
    """Parse ``"x,y,z;x,y,z"`` into an (n, 3) array of fractional coordinates (``""``: no sites)."""
    rows = []
    for item in text.split(";"):
        if not item.strip():
            continue
        try:
            v = [float(t) for t in item.replace(",", " ").split()]
        except ValueError:
            raise InputError(f"interstitial site '{item}' is not three numbers x,y,z") from None
        if len(v) != 3:
            raise InputError(f"interstitial site '{item}' is not three numbers x,y,z")
        rows.append(v)
    return np.asarray(rows, dtype=float).reshape(-1, 3)
