"""Lattice and interstitial sites of a mobile species in a reference structure.

Candidate sites are the reference positions of the mobile species plus the
largest empty spaces of the structure, found generally as the Voronoi
vertices of all atoms (periodic images included) whose distance to the
nearest atom is at least ``rel_radius`` times the largest such distance.
Each candidate is then classified by its environment of framework atoms
(the other species): sites whose framework coordination number and mean
distance match those of most reference positions of the mobile species are
*lattice* sites (including vacant ones), the others are *interstitial*.

For rock-salt LiF this gives the Li octahedral sites as lattice sites and
the tetrahedral sites at (1/4, 1/4, 1/4) of the conventional cell (the
centres of its small cubes) as interstitial sites.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Voronoi, cKDTree

from ionmd.analysis.datafile import ReferenceStructure
from ionmd.errors import InputError

_IMAGES = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=float)


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
    """

    frac: np.ndarray
    kind: np.ndarray
    cell_A: np.ndarray

    @property
    def n_lattice(self) -> int:
        return int(np.sum(self.kind == "L"))

    @property
    def n_interstitial(self) -> int:
        return int(np.sum(self.kind == "I"))

    def cartesian(self) -> np.ndarray:
        return self.frac @ self.cell_A

    def min_separation_A(self) -> float:
        """Shortest periodic distance between two sites, Å."""
        tree = cKDTree((self.frac[None] + _IMAGES[:, None]).reshape(-1, 3) @ self.cell_A)
        d, _ = tree.query(self.cartesian(), k=2)
        return float(d[:, 1].min())


def _periodic_tree(frac: np.ndarray, cell: np.ndarray) -> tuple[cKDTree, np.ndarray]:
    imgs = (frac[None] + _IMAGES[:, None]).reshape(-1, 3)
    idx = np.tile(np.arange(len(frac)), len(_IMAGES))
    return cKDTree(imgs @ cell), idx


def empty_sites(frac_all: np.ndarray, cell: np.ndarray, rel_radius: float = 0.75) -> np.ndarray:
    """Fractional coordinates of the largest empty spaces (Voronoi vertices) of a periodic structure."""
    imgs = (frac_all[None] + _IMAGES[:, None]).reshape(-1, 3)
    keep = np.all((imgs > -0.35) & (imgs < 1.35), axis=1)
    vor = Voronoi(imgs[keep] @ cell)
    vf = np.linalg.solve(cell.T, vor.vertices.T).T
    inside = np.all((vf >= -1e-6) & (vf < 1 - 1e-6), axis=1)
    vf = np.mod(vf[inside], 1.0)
    tree, _ = _periodic_tree(frac_all, cell)
    r, _ = tree.query(vf @ cell)
    if len(r) == 0:
        return np.zeros((0, 3))
    sel = r >= rel_radius * r.max()
    order = np.argsort(-r[sel])
    return vf[sel][order]


def _merge(frac: np.ndarray, cell: np.ndarray, tol_A: float) -> np.ndarray:
    """Keep the first of any group of points closer than ``tol_A`` (periodic)."""
    kept: list[np.ndarray] = []
    for f in frac:
        if kept:
            d = np.asarray(kept) - f
            d -= np.round(d)
            if np.min(np.linalg.norm(d @ cell, axis=1)) < tol_A:
                continue
        kept.append(f)
    return np.asarray(kept).reshape(-1, 3)


def _environment(frac: np.ndarray, fw_tree: cKDTree | None, cell: np.ndarray, rc: float):
    if fw_tree is None:
        return np.zeros(len(frac), dtype=int), np.zeros(len(frac))
    pts = frac @ cell
    lists = fw_tree.query_ball_point(pts, rc)
    cn = np.array([len(x) for x in lists])
    mean = np.array([
        np.mean(np.linalg.norm(fw_tree.data[x] - p, axis=1)) if x else 0.0
        for x, p in zip(lists, pts, strict=True)
    ])
    return cn, mean


def find_sites(ref: ReferenceStructure, species: list[str], interstitial_frac: np.ndarray | None = None,
               rel_radius: float = 0.75, min_site_sep_A: float = 1.0) -> SiteSet:
    """Lattice and interstitial sites of ``species`` in ``ref`` (see the module docstring).

    Parameters
    ----------
    interstitial_frac : ndarray (n, 3), optional
        Interstitial sites given by the user (fractional, reference cell); then only
        the reference positions of the species are lattice sites.
    rel_radius : float
        Keep Voronoi vertices whose empty radius is at least this fraction of the largest.
    min_site_sep_A : float
        Candidates closer than this to an earlier one are merged.
    """
    is_mob = np.array([s in species for s in ref.symbols])
    if not np.any(is_mob):
        raise InputError(f"reference '{ref.path}' has no atom of species {species} "
                         f"(it has {sorted(set(ref.symbols))})")
    cell = ref.cell_A
    frac_all = np.mod(np.linalg.solve(cell.T, (ref.positions_A - ref.origin_A).T).T, 1.0)
    mob = frac_all[is_mob]
    if interstitial_frac is not None:
        inter = np.mod(np.asarray(interstitial_frac, dtype=float).reshape(-1, 3), 1.0)
        lat = mob
        if len(inter):
            d = lat[:, None] - inter[None]
            d -= np.round(d)
            near = np.linalg.norm(d @ cell, axis=2).min(axis=1) < 0.5
            lat = lat[~near]
        frac = np.vstack([lat, inter])
        kind = np.array(["L"] * len(lat) + ["I"] * len(inter))
        return SiteSet(frac, kind, cell)
    candidates = _merge(np.vstack([mob, empty_sites(frac_all, cell, rel_radius)]), cell, min_site_sep_A)
    fw = frac_all[~is_mob]
    if len(fw) == 0:
        kind = np.array(["L"] * len(mob) + ["I"] * (len(candidates) - len(mob)))
        return SiteSet(candidates, kind[: len(candidates)], cell)
    fw_tree, _ = _periodic_tree(fw, cell)
    d_near, _ = fw_tree.query(mob @ cell)
    rc = 1.2 * float(np.median(d_near))
    cn, mean = _environment(candidates, fw_tree, cell, rc)
    cn_m, mean_m = cn[: len(mob)], mean[: len(mob)]
    vals, counts = np.unique(cn_m, return_counts=True)
    cn_lat = vals[np.argmax(counts)]
    mean_lat = float(np.median(mean_m[cn_m == cn_lat]))
    lattice = (cn == cn_lat) & (np.abs(mean - mean_lat) < 0.1 * mean_lat)
    return SiteSet(candidates, np.where(lattice, "L", "I"), cell)


def parse_fractional_sites(text: str) -> np.ndarray:
    """Parse ``"x,y,z;x,y,z"`` into an (n, 3) array of fractional coordinates."""
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
    return np.asarray(rows).reshape(-1, 3)
