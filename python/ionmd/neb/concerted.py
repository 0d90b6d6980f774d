"""NEB of concerted interstitial hops (interstitialcy, "knock-off"), for any structure.

An interstitial at interstitial site ``a`` pushes the lattice atom at lattice site ``l``
onto another interstitial site ``b`` and takes ``l`` itself, both at once. The three sites
are fractional positions of the perfect reference; ``b`` is written as the image next to
``l`` (so ``b - l`` is the partner's displacement). Such a hop is what the lattice<->
interstitial (L-I) hop classes of the mechanism analysis are halves of: a single-atom band
from the perfect reference would build a Frenkel pair that relaxes back.

:func:`knockoff_candidates` lists every ``b`` for a given ``(a, l)``: the sites of ``a``'s
orbit under the reference's space group at the L-I distance from ``l`` (other than ``a``).
:func:`group_concerted` groups the triples into symmetry-distinct types (an operation maps
``l``, ``a - l`` and ``b - l`` of one onto the other's, in either direction: the reverse
of ``(a, l, b)`` is ``(b, l, a)``); :func:`knockoff_types` does both and labels each type
with its angle ``a-l-b`` at ``l`` (180° is collinear). :func:`concerted_barrier` runs one
guarded climbing-image NEB of one triple, like :func:`ionmd.neb.hops.hop_barrier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.neb.hops import (
    SITE_TOL_A,
    SYMMETRY_TOL_A,
    HopType,
    _frac3,
    _site_occupant,
    group_by_first_match,
    hop_supercell,
    run_hop_neb,
    symmetry_operations,
)
from ionmd.neb.potential import Potential
from ionmd.neb.result import HopInfo, NEBResult
from ionmd.symmetry import mic_frac

KNOCKOFF_KIND = "knock-off"
"""``HopInfo.kind`` of a concerted interstitialcy hop."""

DISTANCE_TOL_A = 0.05
"""A candidate ``b`` is at the L-I distance from ``l`` within this (Å)."""

MIN_SEPARATION_A = 0.5
"""End points with two atoms closer than this (Å) are refused (an occupied site)."""


@dataclass
class ConcertedHop:
    """A knock-off: interstitial at ``a`` takes lattice site ``l``; its atom goes to ``b``.

    Fractional coordinates of the reference cell; ``a`` and ``b`` are the images next to
    ``l`` (the straight lines ``a -> l`` and ``l -> b`` are the two atoms' paths).
    """

    label: str
    interstitial_frac: np.ndarray
    lattice_frac: np.ndarray
    end_frac: np.ndarray

    def __post_init__(self) -> None:
        self.interstitial_frac = _frac3(self.interstitial_frac, "interstitial_frac")
        self.lattice_frac = _frac3(self.lattice_frac, "lattice_frac")
        self.end_frac = _frac3(self.end_frac, "end_frac")

    def angle_deg(self, cell: np.ndarray) -> float:
        """Angle ``a-l-b`` at the lattice site (180°: collinear push)."""
        u = (self.interstitial_frac - self.lattice_frac) @ cell
        v = (self.end_frac - self.lattice_frac) @ cell
        c = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def site_orbit(perfect: Atoms, frac: Sequence[float], symprec: float = 1e-3,
               tol_A: float = SYMMETRY_TOL_A) -> np.ndarray:
    """All sites of the cell (fractional, in [0, 1)) equivalent to ``frac`` by symmetry."""
    rot, tra = symmetry_operations(perfect, symprec)
    cell = perfect.cell.array
    pts = (np.asarray(frac, float) @ rot.transpose(0, 2, 1) + tra) % 1.0
    out: list[np.ndarray] = []
    for p in pts:
        if not out or np.min(np.linalg.norm(mic_frac(np.asarray(out) - p) @ cell, axis=1)) > tol_A:
            out.append(p)
    return np.asarray(out) % 1.0


def knockoff_candidates(
    perfect: Atoms,
    interstitial_frac: Sequence[float],
    lattice_frac: Sequence[float],
    distance_tol_A: float = DISTANCE_TOL_A,
    symprec: float = 1e-3,
) -> list[ConcertedHop]:
    """Every knock-off of the interstitial at ``a`` through the lattice site ``l``.

    Parameters
    ----------
    perfect
        The perfect reference (its space group gives the interstitial sites).
    interstitial_frac, lattice_frac
        ``a`` and ``l`` (fractional), e.g. the two ends of an L-I hop class.
    distance_tol_A
        A site equivalent to ``a`` is a candidate ``b`` when its distance from ``l`` equals
        ``|a - l|`` within this.
    symprec
        spglib tolerance (Å).

    Returns
    -------
    list[ConcertedHop]
        One per ``b`` (``a`` is taken as its image next to ``l``), unlabelled.
    """
    cell = perfect.cell.array
    l_f = _frac3(lattice_frac, "lattice_frac")
    a_f = _frac3(interstitial_frac, "interstitial_frac")
    a_f = l_f + mic_frac(a_f - l_f)
    r_la = float(np.linalg.norm((a_f - l_f) @ cell))
    if r_la < 1e-3:
        raise InputError("knock-off: the interstitial and the lattice site are the same point")
    if _site_occupant(perfect, a_f % 1.0, SITE_TOL_A) is not None:
        raise InputError(
            f"knock-off: interstitial site {np.round(a_f % 1.0, 4)} is occupied in the perfect "
            "reference (give the lattice end and the empty interstitial end of the hop)"
        )
    if _site_occupant(perfect, l_f % 1.0, SITE_TOL_A) is None:
        raise InputError(
            f"knock-off: lattice site {np.round(l_f % 1.0, 4)} holds no atom in the perfect reference"
        )
    orbit = site_orbit(perfect, a_f % 1.0, symprec)
    # images of every orbit site within reach of l
    n_img = np.ceil(r_la / (perfect.cell.volume / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1))).astype(int) + 1
    shifts = np.array(np.meshgrid(*[np.arange(-n, n + 1) for n in n_img], indexing="ij")).reshape(3, -1).T
    base = l_f + mic_frac(orbit - l_f)  # (n_orbit, 3)
    cand = (base[:, None, :] + shifts[None, :, :]).reshape(-1, 3)
    r = np.linalg.norm((cand - l_f) @ cell, axis=1)
    keep = np.abs(r - r_la) < distance_tol_A
    keep &= np.linalg.norm((cand - a_f) @ cell, axis=1) > SYMMETRY_TOL_A
    return [ConcertedHop("", a_f, l_f, b) for b in cand[keep]]


@dataclass
class ConcertedType(HopType):
    """Symmetry-equivalent knock-offs (``representative`` a :class:`ConcertedHop`).

    ``hop_length_A`` is the interstitial's path ``|l - a|``; ``angle_deg`` the angle
    ``a-l-b``.
    """

    angle_deg: float = 0.0


def _same_type(x: ConcertedHop, y: ConcertedHop, rot: np.ndarray, tra: np.ndarray,
               cell: np.ndarray, tol_A: float) -> bool:
    l_img = x.lattice_frac @ rot.transpose(0, 2, 1) + tra
    da = (x.interstitial_frac - x.lattice_frac) @ rot.transpose(0, 2, 1)
    db = (x.end_frac - x.lattice_frac) @ rot.transpose(0, 2, 1)
    ok_l = np.linalg.norm(mic_frac(l_img - y.lattice_frac) @ cell, axis=1) < tol_A
    ya, yb = y.interstitial_frac - y.lattice_frac, y.end_frac - y.lattice_frac
    for ta, tb in ((ya, yb), (yb, ya)):  # either direction
        ok = (ok_l & (np.linalg.norm((da - ta) @ cell, axis=1) < tol_A)
              & (np.linalg.norm((db - tb) @ cell, axis=1) < tol_A))
        if np.any(ok):
            return True
    return False


def group_concerted(perfect: Atoms, hops: Sequence[ConcertedHop], symprec: float = 1e-3,
                    tol_A: float = SYMMETRY_TOL_A) -> list[ConcertedType]:
    """Group knock-offs into symmetry-distinct types under the space group of ``perfect``.

    Returns the types in order of first appearance (first member = representative).
    """
    if not hops:
        return []
    rot, tra = symmetry_operations(perfect, symprec)
    cell = perfect.cell.array
    groups = group_by_first_match(hops, lambda x, y: _same_type(x, y, rot, tra, cell, tol_A))
    return [
        ConcertedType(k, hops[m[0]], m, float(np.linalg.norm(
            (hops[m[0]].lattice_frac - hops[m[0]].interstitial_frac) @ cell)),
            hops[m[0]].angle_deg(cell))
        for k, m in enumerate(groups)
    ]


def knockoff_types(
    perfect: Atoms,
    interstitial_frac: Sequence[float],
    lattice_frac: Sequence[float],
    lattice_label: str = "L",
    interstitial_label: str = "I",
    distance_tol_A: float = DISTANCE_TOL_A,
    symprec: float = 1e-3,
) -> list[ConcertedType]:
    """Symmetry-distinct knock-offs of ``(a, l)``, most collinear first, each labelled.

    Labels read ``knock-off <lattice_label> via <interstitial_label>, <angle>°``; types of
    equal angle that no operation relates get ``#2``, ``#3``, ... Types are indexed in the
    returned order. See :func:`knockoff_candidates` for the parameters.
    """
    cands = knockoff_candidates(perfect, interstitial_frac, lattice_frac, distance_tol_A, symprec)
    types = sorted(group_concerted(perfect, cands, symprec), key=lambda t: -t.angle_deg)
    seen: dict[str, int] = {}
    for k, t in enumerate(types):
        base = f"knock-off {lattice_label} via {interstitial_label}, {t.angle_deg:.0f}°"
        seen[base] = seen.get(base, 0) + 1
        t.index = k
        t.representative.label = base if seen[base] == 1 else f"{base} #{seen[base]}"
    return types


def knockoff_types_of_class(perfect: Atoms, hop_class: Any, **kwargs: Any) -> list[ConcertedType]:
    """:func:`knockoff_types` of an L-I hop class (an object or mapping with ``from_kind``,
    ``to_kind`` ``"L"``/``"I"``, ``start_frac``, ``end_frac`` and the sublattice labels)."""
    def get(k: str, default: Any = None) -> Any:
        return hop_class.get(k, default) if isinstance(hop_class, dict) else getattr(hop_class, k, default)

    kinds = (get("from_kind"), get("to_kind"))
    if sorted(str(k) for k in kinds) != ["I", "L"]:
        raise InputError(f"hop class {get('label', '?')}: a knock-off needs an L-I class, got {kinds}")
    ends = [(get("start_frac"), get("from_sublattice", kinds[0])),
            (get("end_frac"), get("to_sublattice", kinds[1]))]
    (l_f, l_lab), (a_f, a_lab) = ends if kinds[0] == "L" else ends[::-1]
    return knockoff_types(perfect, a_f, l_f, lattice_label=str(l_lab),
                          interstitial_label=str(a_lab), **kwargs)


@dataclass
class ConcertedEndpoints:
    """Unrelaxed end points of a knock-off (same atoms in the same order)."""

    initial: Atoms
    final: Atoms
    species: str
    interstitial_atom: int
    lattice_atom: int
    hop_length_A: float
    partner_length_A: float


def concerted_endpoints(
    reference: Atoms,
    hop: ConcertedHop,
    species: str | None = None,
    repeat: Sequence[int] = (1, 1, 1),
    site_tol_A: float = SITE_TOL_A,
) -> ConcertedEndpoints:
    """End points of a knock-off from the perfect reference plus one interstitial.

    The interstitial (element ``species``, default the lattice atom's) is added at ``a``;
    in the final state it sits on ``l`` and the atom of ``l`` on ``b``. The sites are taken
    in the supercell copy nearest the middle, so neither path crosses the boundary.

    Raises
    ------
    InputError
        If ``l`` is empty, ``a`` or ``b`` is occupied, the lattice atom's element is not
        ``species``, the hop does not fit in half the cell, or two atoms overlap.
    """
    name = hop.label or "knock-off"
    span = float(np.linalg.norm((hop.end_frac - hop.interstitial_frac) @ reference.cell.array))
    atoms, rep = hop_supercell(reference, repeat, span,
                               f"{name}: the knock-off spans {span:.3f} Å, not less")
    cell = atoms.cell.array
    l_s = (hop.lattice_frac % 1.0 + rep // 2) / rep
    a_s = l_s + (hop.interstitial_frac - hop.lattice_frac) / rep
    b_s = l_s + (hop.end_frac - hop.lattice_frac) / rep
    i_l = _site_occupant(atoms, l_s % 1.0, site_tol_A)
    if i_l is None:
        raise InputError(f"{name}: the lattice site {np.round(hop.lattice_frac, 4)} holds no atom")
    for site, what in ((a_s, "interstitial start"), (b_s, "end")):
        occ = _site_occupant(atoms, site % 1.0, site_tol_A)
        if occ is not None:
            raise InputError(f"{name}: the {what} site {np.round(site % 1.0, 4)} holds "
                             f"{atoms[occ].symbol} (atom {occ}); it must be empty")
    elem = atoms[i_l].symbol
    if species is not None and species != elem:
        raise InputError(f"{name}: the lattice site holds {elem}, not the interstitial's {species}; "
                         "a knock-off moves an atom of the interstitial's element")
    f_l = atoms.get_scaled_positions(wrap=False)[i_l]
    img = np.round(f_l - l_s)  # the image of the site the lattice atom is written at
    initial = atoms.copy()
    initial.append(elem)
    initial.positions[-1] = (a_s % 1.0) @ cell
    i_i = len(initial) - 1
    final = initial.copy()
    final.positions[i_i] = initial.positions[i_i] + (l_s - a_s) @ cell
    final.positions[i_l] = (b_s + img) @ cell
    for at, which in ((initial, "initial"), (final, "final")):
        d = at.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        if d.min() < MIN_SEPARATION_A:
            i, j = np.unravel_index(np.argmin(d), d.shape)
            raise InputError(f"{name}: atoms {i} and {j} of the {which} end point are "
                             f"{d.min():.3f} Å apart")
    return ConcertedEndpoints(
        initial, final, elem, i_i, int(i_l),
        float(np.linalg.norm((l_s - a_s) @ cell)), float(np.linalg.norm((b_s - l_s) @ cell)),
    )


def concerted_barrier(
    reference: Atoms,
    hop: ConcertedHop,
    potential: Potential,
    workdir: str | Path,
    species: str | None = None,
    repeat: Sequence[int] = (1, 1, 1),
    hop_type: int = -1,
    **kwargs: Any,
) -> NEBResult:
    """Climbing-image NEB of one knock-off: end points relaxed at fixed cell, guarded.

    Parameters
    ----------
    reference, hop, species, repeat
        As for :func:`concerted_endpoints` (``reference`` is the perfect structure).
    potential, workdir, hop_type
        As for :func:`ionmd.neb.hops.hop_barrier`.
    **kwargs
        ``n_images``, ``settings``, ``interpolation``, ``launcher``, ``timeout_s``,
        ``ranks_per_image``, ``relax_ftol_eV_A`` and the guards ``max_endpoint_shift_A``,
        ``below_tol_eV``, as for :func:`ionmd.neb.hops.hop_barrier`.

    Returns
    -------
    NEBResult
        ``result.hop`` records both moving atoms: the interstitial (``moving_atom``,
        ``start_frac`` = ``a``, ``end_frac`` = ``l``) and the pushed lattice atom
        (``partner_atom``, ``partner_start_frac`` = ``l``, ``partner_end_frac`` = ``b``).
        ``barrier_forward_eV`` is None if the NEB did not converge or a guard refused it.
    """
    ep = concerted_endpoints(reference, hop, species=species, repeat=repeat)
    info = HopInfo(
        label=hop.label,
        kind=KNOCKOFF_KIND,
        species=ep.species,
        start_frac=hop.interstitial_frac.tolist(),
        end_frac=hop.lattice_frac.tolist(),
        hop_length_A=ep.hop_length_A,
        moving_atom=ep.interstitial_atom,
        hop_type=hop_type,
        partner_atom=ep.lattice_atom,
        partner_start_frac=hop.lattice_frac.tolist(),
        partner_end_frac=hop.end_frac.tolist(),
        partner_length_A=ep.partner_length_A,
    )
    return run_hop_neb(ep.initial, ep.final, potential, workdir,
                       hop.label or f"{KNOCKOFF_KIND} of {ep.species}", repeat, info, **kwargs)
