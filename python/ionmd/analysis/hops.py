"""Hop classes: hops between sites grouped by symmetry equivalence.

Two hops (site i -> site j) belong to the same class when a space-group operation
of the perfect structure (:class:`ionmd.analysis.sites.SiteSymmetry`) maps one onto
the other, in either direction (a class is an unordered pair of sublattices). So in
a layered hexagonal lattice the in-plane and the interlayer hops between the same
sublattices are different classes, and in a cubic lattice all nearest-neighbour
hops of one sublattice are one class. The hop vector is the shortest periodic
vector between the two sites.

Each class is labelled ``<A>-<B> <d> Å`` with its sublattices and length and, on a
lattice with a unique 3-, 4- or 6-fold axis (called c, as in the conventional
setting), its direction: ``in-plane`` (within 5° of the plane normal to c),
``along c`` (within 5° of c) or ``<θ>° to c``.

Rates are given per carrier: per vacancy for lattice-to-lattice classes when the
trajectory has vacant lattice sites, per interstitial ion for classes that touch an
interstitial site when it has ions on interstitial sites, per ion otherwise (the
counts are medians over the frames, so the reference may be perfect or defective); each with an
exact (Garwood) 95% Poisson interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import chi2

from ionmd.analysis.sites import SiteSet
from ionmd.results import Result
from ionmd.symmetry import HopOrbits, SpaceGroupOps

VECTOR_TOL_A = 0.05
"""Two hop vectors are the same when they differ by less than this, Å."""

FEW_HOPS = 10
"""A class seen fewer times than this carries the ``few_hops`` flag."""


@dataclass
class HopClass(Result):
    """One symmetry-distinct kind of hop.

    Attributes
    ----------
    label : str
        e.g. ``Li(2)-Li(2) 2.11 Å in-plane``.
    from_sublattice, to_sublattice : str
        Sublattice labels of the representative's start and end sites.
    from_kind, to_kind : str
        ``"L"`` or ``"I"`` of the start and end sites.
    distance_A : float
        Hop length, Å.
    angle_to_axis_deg : float or None
        Angle between the hop and the unique axis (0-90°); None on lattices without one.
    direction : str
        ``in-plane``, ``along c``, ``<θ>° to c`` or ``""``.
    start_frac, end_frac : list of float
        A representative hop, fractional coordinates of the reference cell (the end
        may lie outside [0, 1): the straight line from start to end is the hop).
    start_site, end_site : int
        Site indices of the representative.
    """

    label: str
    from_sublattice: str
    to_sublattice: str
    from_kind: str
    to_kind: str
    distance_A: float
    angle_to_axis_deg: float | None
    direction: str
    start_frac: list[float]
    end_frac: list[float]
    start_site: int = -1
    end_site: int = -1

    @property
    def pair(self) -> str:
        """``L-L``, ``L-I`` or ``I-I`` (sorted)."""
        return "-".join(sorted((self.from_kind, self.to_kind)))


@dataclass
class HopClassRate(Result):
    """Count and jump rate of one hop class in one trajectory (or summed over seeds).

    ``rate_per_ps`` is per carrier (``basis``: ``per vacancy``, ``per interstitial`` or
    ``per ion``; ``n_carriers`` of them); ``cell_rate_per_ps`` is the rate in the whole cell.
    """

    hop_class: HopClass
    count: int
    duration_ps: float
    n_carriers: int
    basis: str
    rate_per_ps: float = float("nan")
    rate_ci95_per_ps: list[float] = field(default_factory=list)
    cell_rate_per_ps: float = float("nan")
    flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.update()

    def to_dict(self) -> dict:
        return super().to_dict() | {"hop_class": self.hop_class.to_dict()}

    def update(self) -> None:
        """Recompute the rates and the interval from ``count`` and ``duration_ps``."""
        n = max(self.n_carriers, 1) * self.duration_ps
        if self.duration_ps <= 0:
            self.rate_per_ps, self.rate_ci95_per_ps, self.cell_rate_per_ps = float("nan"), [], float("nan")
        else:
            lo, hi = poisson_ci95(self.count)
            self.rate_per_ps = self.count / n
            self.rate_ci95_per_ps = [lo / n, hi / n]
            self.cell_rate_per_ps = self.count / self.duration_ps
        self.flags = ["few_hops"] if self.count < FEW_HOPS else []


def poisson_ci95(k: int) -> tuple[float, float]:
    """Exact (Garwood) 95% interval of a Poisson mean given ``k`` counts."""
    lo = 0.0 if k == 0 else float(chi2.ppf(0.025, 2 * k) / 2)
    return lo, float(chi2.ppf(0.975, 2 * k + 2) / 2)


class HopClassifier:
    """Assign hops (site i -> site j) to symmetry-distinct :class:`HopClass` es of a :class:`SiteSet`.

    The classes are :class:`ionmd.symmetry.HopOrbits` under the operations that map the
    site set onto itself: the rule the NEB hop types (:func:`ionmd.neb.hops.group_hops`)
    use too.
    """

    def __init__(self, sites: SiteSet) -> None:
        self.sites = sites
        self.classes: list[HopClass] = []
        self._cache: dict[tuple[int, int], int] = {}
        sym = sites.symmetry
        ops = sym.ops if sym is not None else SpaceGroupOps.identity(sites.cell_A)
        # an image of a site within the symmetry's tolerance is that site (and no other one)
        start_tol = min(sym.tol_A if sym is not None else VECTOR_TOL_A, 0.5 * sites.min_separation_A())
        self._orbits = HopOrbits(ops, start_tol_A=start_tol, vector_tol_A=VECTOR_TOL_A)
        self._axis = sym.unique_axis if sym is not None else None
        self._labels = sites.labels()

    def vector_A(self, i: int, j: int) -> np.ndarray:
        """Shortest periodic vector from site i to site j, Å."""
        d = self.sites.frac[j] - self.sites.frac[i]
        d -= np.round(d)
        best = None
        for img in np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]):
            v = (d + img) @ self.sites.cell_A
            if best is None or v @ v < best @ best - 1e-12:
                best = v
        return best

    def classify(self, i: int, j: int) -> int:
        """Index into ``classes`` of the hop from site i to site j (a new class when unseen)."""
        key = (int(i), int(j))
        if key in self._cache:
            return self._cache[key]
        v = self.vector_A(i, j)
        found, new = self._orbits.add(self.sites.frac[i], np.linalg.solve(self.sites.cell_A.T, v))
        if new:
            self._new_class(i, j, v)
        self._cache[key] = self._cache[(int(j), int(i))] = found
        return found

    def _new_class(self, i: int, j: int, v: np.ndarray) -> int:
        a, b = str(self._labels[i]), str(self._labels[j])
        if (self.sites.kind[i] != "L", a) > (self.sites.kind[j] != "L", b):  # lattice first, then by label
            i, j, a, b, v = j, i, b, a, -v
        dist = float(np.linalg.norm(v))
        angle, direction = None, ""
        if self._axis is not None and dist > 0:
            angle = float(np.degrees(np.arccos(min(1.0, abs(float(v @ self._axis)) / dist))))
            direction = "in-plane" if angle > 85 else "along c" if angle < 5 else f"{angle:.0f}° to c"
        label = f"{a}-{b} {dist:.2f} Å" + (f" {direction}" if direction else "")
        same = sum(1 for c in self.classes if c.label == label or c.label.startswith(label + " #"))
        if same:
            label += f" #{same + 1}"
        start = self.sites.frac[i]
        end = start + np.linalg.solve(self.sites.cell_A.T, v)
        self.classes.append(HopClass(label, a, b, str(self.sites.kind[i]), str(self.sites.kind[j]), dist, angle,
                                     direction, [float(x) for x in start], [float(x) for x in end], int(i), int(j)))
        return len(self.classes) - 1


def carriers(hop_class: HopClass, n_vacancies: int, n_interstitials: int, n_ions: int) -> tuple[int, str]:
    """Number and name of the carriers a class's rate is normalised by (see the module docstring)."""
    if hop_class.pair == "L-L" and n_vacancies > 0:
        return n_vacancies, "per vacancy"
    if "I" in hop_class.pair and n_interstitials > 0:
        return n_interstitials, "per interstitial"
    return n_ions, "per ion"
