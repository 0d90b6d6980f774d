"""NEB barriers of hop classes, for any structure: end points, symmetry-distinct types, barriers.

A hop is given by the start and end fractional positions of the moving atom in a
reference cell (any object with ``label``, ``start_frac`` and ``end_frac``, for example a
hop class of the mechanism analysis, or plain arrays). What moves is read from the
reference itself:

``vacancy``
    Both sites hold an atom of the same element (a perfect reference): the atom at the end
    site is removed, and the atom at the start site hops into that vacancy.
``move``
    An atom sits at the start and the end site is empty (a defective reference whose vacancy
    is at the end, or an interstitial at the start): that atom moves to the end site.
``interstitial``
    Both sites are empty: an atom of ``species`` is added at the start and moves to the end.

Hops related by a space-group operation of the perfect reference (spglib), in either
direction, are one hop type (:func:`group_hops`); :func:`hop_type_barriers` runs one
climbing-image NEB per type, with the guards of :func:`ionmd.neb.result.apply_guards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.result import (
    BELOW_ENDPOINT_TOL_EV,
    MAX_ENDPOINT_SHIFT_A,
    HopInfo,
    NEBResult,
    plot_profile,
)
from ionmd.neb.workflow import run_neb
from ionmd.symmetry import HopOrbits, SpaceGroupOps, mic_frac

SITE_TOL_A = 0.5
"""An atom within this distance (Å) of a hop site occupies it."""

SYMMETRY_TOL_A = 0.1
"""Two hops are one type if a symmetry operation maps one onto the other within this (Å)."""

KINDS: tuple[str, ...] = ("vacancy", "move", "interstitial")


@dataclass
class Hop:
    """A hop of one atom: start and end in fractional coordinates of a reference cell."""

    label: str
    start_frac: np.ndarray
    end_frac: np.ndarray
    species: str | None = None

    def __post_init__(self) -> None:
        self.start_frac = _frac3(self.start_frac, "start_frac")
        self.end_frac = _frac3(self.end_frac, "end_frac")


def as_hop(obj: Any, label: str = "") -> Hop:
    """A :class:`Hop` from any object with ``start_frac``/``end_frac`` (and ``label``).

    Also accepts a ``(start_frac, end_frac)`` pair or a mapping with those keys.
    """
    if isinstance(obj, Hop):
        return obj
    if isinstance(obj, dict):
        get = obj.get
    elif hasattr(obj, "start_frac") and hasattr(obj, "end_frac"):

        def get(k, default=None):
            return getattr(obj, k, default)
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        start, end = obj
        return Hop(label, _frac3(start, "start_frac"), _frac3(end, "end_frac"))
    else:
        raise InputError(
            f"a hop needs start_frac and end_frac (an object, a mapping or a pair), got {obj!r}"
        )
    return Hop(
        str(get("label", label) or label),
        _frac3(get("start_frac"), "start_frac"),
        _frac3(get("end_frac"), "end_frac"),
        get("species", None),
    )


def _frac3(x: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float).reshape(3)
    except (TypeError, ValueError):
        raise InputError(f"hop {name} must be 3 fractional coordinates, got {x!r}") from None
    if not np.all(np.isfinite(a)):
        raise InputError(f"hop {name} is not finite: {a}")
    return a


def hop_vector_frac(hop: Hop) -> np.ndarray:
    """The hop's displacement (fractional): the shortest periodic image of ``end - start``.

    When the end is a periodic image of the start itself (a hop by a lattice vector of a
    small cell, e.g. ``(0,0,0) -> (1,0,0)``), the displacement is taken as written.
    """
    d = hop.end_frac - hop.start_frac
    m = mic_frac(d)
    return d if np.allclose(m, 0.0, atol=1e-6) else m


@dataclass
class HopEndpoints:
    """Unrelaxed NEB end points of one hop (same atoms in the same order)."""

    initial: Atoms
    final: Atoms
    kind: str
    species: str
    moving_atom: int
    hop_length_A: float
    start_frac: np.ndarray
    end_frac: np.ndarray


def _site_occupant(atoms: Atoms, frac: np.ndarray, tol_A: float) -> int | None:
    d = mic_frac(atoms.get_scaled_positions(wrap=True) - frac) @ atoms.cell.array
    r = np.linalg.norm(d, axis=1)
    i = int(np.argmin(r)) if len(r) else -1
    return i if i >= 0 and r[i] <= tol_A else None


def _to_supercell(frac: np.ndarray, repeat: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return (np.asarray(frac) % 1.0 + shift) / repeat


def hop_supercell(
    reference: Atoms, repeat: Sequence[int], span_A: float, what: str
) -> tuple[Atoms, np.ndarray]:
    """The supercell ``repeat`` of ``reference`` (no calculator) in which a hop of ``span_A`` fits.

    Raises :class:`InputError` for a repeat below 1, or when ``span_A`` is not below half the
    supercell's smallest width (the message starts with ``what``).
    """
    rep = np.asarray(repeat, dtype=int).reshape(3)
    if np.any(rep < 1):
        raise InputError(f"supercell repeat must be >= 1 in each direction, got {tuple(rep)}")
    atoms = reference.repeat(tuple(int(x) for x in rep)) if np.any(rep > 1) else reference.copy()
    atoms.calc = None
    cell = atoms.cell.array
    widths = atoms.cell.volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    if span_A >= 0.5 * widths.min():
        raise InputError(
            f"{what} than half the cell width ({widths.min():.3f} Å): use a larger supercell "
            f"repeat than {tuple(int(x) for x in rep)}"
        )
    return atoms, rep


def hop_endpoints(
    reference: Atoms,
    hop: Any,
    species: str | None = None,
    repeat: Sequence[int] = (1, 1, 1),
    site_tol_A: float = SITE_TOL_A,
) -> HopEndpoints:
    """Build the two end points of ``hop``: the reference with its defect moved by one hop.

    Parameters
    ----------
    reference
        The structure in whose cell ``hop`` is given (perfect or defective).
    hop
        Anything :func:`as_hop` accepts.
    species
        Element of an added interstitial (kind ``interstitial``); else ``hop.species``.
        For the other kinds, if given, it must be the element of the moving atom.
    repeat
        Supercell of the reference to build (hop sites are taken in the copy nearest the
        middle, so the hop does not cross the supercell boundary).
    site_tol_A
        An atom within this distance of a site occupies it.

    Returns
    -------
    HopEndpoints
        End points, the kind of hop, the moving atom's element, index and the hop length.
    """
    h = as_hop(hop)
    if abs(np.linalg.det(reference.cell.array)) < 1e-9:
        raise InputError("the hop's reference structure has no 3D cell")
    d_frac0 = hop_vector_frac(h)
    length = float(np.linalg.norm(d_frac0 @ reference.cell.array))
    if length < 1e-3:
        raise InputError(f"hop {h.label or '(unlabelled)'}: start and end are the same site")
    atoms, rep = hop_supercell(reference, repeat, length, f"hop of {length:.3f} Å is not shorter")
    shift = rep // 2
    start = _to_supercell(h.start_frac, rep, shift)
    end = start + d_frac0 / rep  # the end site next to the start, not a periodic image
    cell = atoms.cell.array
    i_s = _site_occupant(atoms, start, site_tol_A)
    i_e = _site_occupant(atoms, end % 1.0, site_tol_A)
    name = h.label or f"{np.round(h.start_frac, 4)} -> {np.round(h.end_frac, 4)}"
    symbols = atoms.get_chemical_symbols()
    want = species or h.species
    if i_s is not None and want and symbols[i_s] != want:
        raise InputError(
            f"hop {name}: the atom at the start site is {symbols[i_s]}, not {want}"
        )
    if i_s is None and i_e is not None:
        raise InputError(
            f"hop {name}: the start site is empty but the end site holds {symbols[i_e]} "
            f"(atom {i_e}); give the hop from the occupied site to the empty one"
        )
    if i_s is not None and i_e is not None:
        if symbols[i_s] != symbols[i_e]:
            raise InputError(
                f"hop {name}: a vacancy hop needs the same element at both sites, found "
                f"{symbols[i_s]} at the start and {symbols[i_e]} at the end"
            )
        kind, elem = "vacancy", symbols[i_s]
        frac_all = atoms.get_scaled_positions(wrap=False)
        goal = frac_all[i_s] + d_frac0 / rep  # where the moving atom ends, as an image
        f_e = frac_all[i_e] + np.round(goal - frac_all[i_e])
        target = f_e @ cell
        initial = atoms.copy()
        del initial[i_e]
        moving = i_s - (1 if i_s > i_e else 0)
    elif i_s is not None:
        kind, elem = "move", symbols[i_s]
        initial = atoms.copy()
        moving = i_s
        f_s = atoms.get_scaled_positions(wrap=False)[i_s]
        target = (end + np.round(f_s - start)) @ cell
    else:
        if not want:
            raise InputError(
                f"hop {name}: both sites are empty (an interstitial hop); give the species "
                "of the interstitial"
            )
        kind, elem = "interstitial", want
        initial = atoms.copy()
        initial.append(elem)
        initial.positions[-1] = (start % 1.0) @ cell
        moving = len(initial) - 1
        target = initial.positions[-1] + (d_frac0 / rep) @ cell
    final = initial.copy()
    final.positions[moving] = target
    return HopEndpoints(initial, final, kind, elem, moving, length, h.start_frac, h.end_frac)


def symmetry_operations(
    structure: Atoms, symprec: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Space-group operations (rotations, translations; fractional) of ``structure`` (spglib)."""
    import spglib

    cell = (structure.cell.array, structure.get_scaled_positions(wrap=True), structure.numbers)
    sym = spglib.get_symmetry(cell, symprec=symprec)
    if sym is None:
        raise InputError("spglib found no symmetry operations for the hop reference structure")
    return np.asarray(sym["rotations"], dtype=float), np.asarray(sym["translations"], dtype=float)


@dataclass
class HopType:
    """Symmetry-equivalent hops: one representative and the indices of all members."""

    index: int
    representative: Hop
    members: list[int] = field(default_factory=list)
    hop_length_A: float = 0.0

    @property
    def label(self) -> str:
        """The representative's label (else ``type <index>``)."""
        return self.representative.label or f"type {self.index}"


def group_hops(
    perfect: Atoms,
    hops: Sequence[Any],
    symprec: float = 1e-3,
    tol_A: float = SYMMETRY_TOL_A,
) -> list[HopType]:
    """Group hops into symmetry-distinct types under the space group of ``perfect``.

    Two hops are one type when a space-group operation of ``perfect`` maps the start and
    the hop vector of one onto those of the other (in either direction): the rule of
    :class:`ionmd.symmetry.HopOrbits`, which the MD hop classes
    (:class:`ionmd.analysis.hops.HopClassifier`) follow too. Hops of equal length that no
    operation relates (e.g. in-plane and out-of-plane hops of a layered lattice) stay apart.

    Parameters
    ----------
    perfect
        The perfect reference; the hops' fractional positions are in its cell.
    hops
        Anything :func:`as_hop` accepts, each.
    symprec
        spglib tolerance (Å).
    tol_A
        Position tolerance (Å) when matching hops.

    Returns
    -------
    list[HopType]
        In order of first appearance; the first member of each type is its representative.
    """
    hs = [as_hop(h, label=f"hop {k}") for k, h in enumerate(hops)]
    if not hs:
        return []
    orbits = HopOrbits(SpaceGroupOps.of_atoms(perfect, symprec), start_tol_A=tol_A, vector_tol_A=tol_A)
    types: list[HopType] = []
    for k, h in enumerate(hs):
        d = hop_vector_frac(h)
        t, new = orbits.add(h.start_frac, d)
        if new:
            types.append(HopType(t, h, [], float(np.linalg.norm(d @ perfect.cell.array))))
        types[t].members.append(k)
    return types


def group_by_first_match(items: Sequence[Any], same: Any) -> list[list[int]]:
    """Indices of ``items`` grouped: each joins the first group whose first item is ``same``."""
    groups: list[list[int]] = []
    for k, item in enumerate(items):
        for g in groups:
            if same(items[g[0]], item):
                g.append(k)
                break
        else:
            groups.append([k])
    return groups


def hop_barrier(
    reference: Atoms,
    hop: Any,
    potential: Potential,
    workdir: str | Path,
    species: str | None = None,
    repeat: Sequence[int] = (1, 1, 1),
    n_images: int = 5,
    settings: NEBSettings | None = None,
    interpolation: str = "idpp",
    launcher: str = "mpirun",
    timeout_s: float | None = None,
    ranks_per_image: int = 1,
    relax_ftol_eV_A: float = 1e-3,
    max_endpoint_shift_A: float = MAX_ENDPOINT_SHIFT_A,
    below_tol_eV: float = BELOW_ENDPOINT_TOL_EV,
    hop_type: int = -1,
) -> NEBResult:
    """Climbing-image NEB of one hop: build its end points, relax them at fixed cell, run.

    Parameters
    ----------
    reference, hop, species, repeat
        As for :func:`hop_endpoints`.
    potential
        The model as LAMMPS lines (its ``symbols`` must include every element).
    workdir
        LAMMPS files and logs; ``neb.json`` and ``neb.png`` are written here.
    n_images, settings, interpolation, launcher, timeout_s, ranks_per_image, relax_ftol_eV_A
        As for :func:`ionmd.neb.workflow.run_neb` (``settings`` default: climbing image on).
    max_endpoint_shift_A, below_tol_eV
        Guards (:func:`ionmd.neb.result.apply_guards`).
    hop_type
        Index of the hop's symmetry type, stored in ``result.hop``.

    Returns
    -------
    NEBResult
        With ``hop`` filled in; ``barrier_forward_eV`` is None if the NEB did not converge or
        a guard refused the band (see ``flags``).
    """
    h = as_hop(hop)
    ep = hop_endpoints(reference, h, species=species, repeat=repeat)
    info = HopInfo(
        label=h.label,
        kind=ep.kind,
        species=ep.species,
        start_frac=[float(x) for x in ep.start_frac],
        end_frac=[float(x) for x in ep.end_frac],
        hop_length_A=ep.hop_length_A,
        moving_atom=ep.moving_atom,
        hop_type=hop_type,
    )
    return run_hop_neb(
        ep.initial, ep.final, potential, workdir, h.label or f"{ep.kind} hop of {ep.species}",
        repeat, info, n_images=n_images, settings=settings, interpolation=interpolation,
        launcher=launcher, timeout_s=timeout_s, ranks_per_image=ranks_per_image,
        relax_ftol_eV_A=relax_ftol_eV_A, max_endpoint_shift_A=max_endpoint_shift_A,
        below_tol_eV=below_tol_eV,
    )


def run_hop_neb(
    initial: Atoms,
    final: Atoms,
    potential: Potential,
    workdir: str | Path,
    label: str,
    repeat: Sequence[int],
    hop: HopInfo,
    settings: NEBSettings | None = None,
    **kwargs: Any,
) -> NEBResult:
    """Relax the end points of a hop at fixed cell, run the guarded NEB, record ``hop``.

    ``kwargs`` go to :func:`ionmd.neb.workflow.run_neb` (``n_images``, ``launcher``, ...);
    ``settings`` defaults to the climbing image on. Writes ``neb.json`` and ``neb.png`` in
    ``workdir``.
    """
    workdir = Path(workdir)
    rep = "x".join(str(int(x)) for x in np.asarray(repeat).reshape(3))
    result = run_neb(
        initial, final, potential, workdir, settings=settings or NEBSettings(), relax=True,
        label=label, cell=f"{rep} reference cells, {len(initial)} atoms", **kwargs,
    )
    result.hop = hop
    result.write_json(workdir / "neb.json")
    plot_profile(result, workdir / "neb.png")
    return result


def hop_type_barriers(
    reference: Atoms,
    hops: Sequence[Any],
    potential: Potential,
    workdir: str | Path,
    perfect: Atoms | None = None,
    **kwargs: Any,
) -> list[tuple[HopType, NEBResult]]:
    """One climbing-image NEB per symmetry-distinct hop type of ``hops``.

    Parameters
    ----------
    reference
        Structure the end points are built from (see :func:`hop_endpoints`).
    hops
        Hops (anything :func:`as_hop` accepts), e.g. the hop classes seen in MD.
    potential
        The model as LAMMPS lines.
    workdir
        Each type's NEB runs in ``workdir/type_<k>``.
    perfect
        The perfect structure whose space group defines the hop types (default ``reference``).
    **kwargs
        Passed to :func:`hop_barrier` (``species``, ``repeat``, ``n_images``, ``settings``, ...).

    Returns
    -------
    list[tuple[HopType, NEBResult]]
        Each type with its result (``flags`` say when its barrier is not to be quoted).
    """
    types = group_hops(perfect if perfect is not None else reference, hops)
    out = []
    for t in types:
        r = hop_barrier(
            reference,
            t.representative,
            potential,
            Path(workdir) / f"type_{t.index}",
            hop_type=t.index,
            **kwargs,
        )
        out.append((t, r))
    return out
