"""The NEB result type, its JSON form and the energy-profile plot."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ionmd.errors import InputError, IonmdError
from ionmd.results import Result

FLAG_BELOW_ENDPOINT = "band_below_endpoint"
"""An image lies below an end point: the end points are not minima; no barrier."""
FLAG_NOT_CONVERGED = "not_converged"
"""The final NEB force is above ``ftol`` (or the step budget ran out): no barrier."""
FLAG_ENDPOINT_MOVED = "endpoint_moved"
"""An end point moved more than the stated distance on relaxation: not the hop asked for."""
FLAG_NO_CLIMB = "no_climb"
"""Plain NEB without a climbing image: the highest image is not the saddle."""
FLAG_SMALL_CELL = "small_cell"
"""The supercell is smaller than the caller's reporting threshold (finite-size error)."""

REFUSING_FLAGS: tuple[str, ...] = (FLAG_BELOW_ENDPOINT, FLAG_NOT_CONVERGED)
"""Flags for which no barrier is given (``barrier_forward_eV`` is None)."""

BELOW_ENDPOINT_TOL_EV = 0.002
"""An image may lie this far (eV) below an end point (energy print precision) before refusal."""

MAX_ENDPOINT_SHIFT_A = 0.5
"""Default largest change (Å) of the end points' separation on relaxation before it is flagged.

Physical relaxation around a defect stays below it (bundled LiF MACE, 2x2x2 cells: the
interstitial end points move atoms by 0.39 Å, their separation changes by +0.24 Å for the
direct hop and -0.34 Å for the knock-off); the issue's broken band had 0.77 Å.
"""


@dataclass
class EndpointInfo:
    """How an end point changed on relaxation."""

    energy_eV: float
    max_displacement_A: float
    max_force_eV_A: float
    n_steps: int


@dataclass
class HopInfo:
    """The hop an NEB was built for (:mod:`ionmd.neb.hops`).

    Attributes
    ----------
    label
        Hop class label (e.g. from the mechanism analysis).
    kind
        ``vacancy`` (an atom moves into a vacant site), ``interstitial`` (an added atom moves
        between two empty sites) or ``move`` (an atom of the reference moves to an empty site).
    species
        Chemical symbol of the moving atom.
    start_frac, end_frac
        Start and end of the hop, fractional coordinates of the reference cell.
    hop_length_A
        Straight-line (minimum-image) length of the hop.
    moving_atom
        Index (0-based) of the moving atom in the NEB end points.
    hop_type
        Index of its symmetry-distinct hop type (:func:`ionmd.neb.hops.group_hops`), -1 if none.
    partner_atom, partner_start_frac, partner_end_frac, partner_length_A
        Concerted hops (kind ``knock-off``, :mod:`ionmd.neb.concerted`): the second moving
        atom (the lattice atom pushed onto an interstitial site), its start, end and path
        length; -1 / empty for single-atom hops.
    """

    label: str
    kind: str
    species: str
    start_frac: list[float]
    end_frac: list[float]
    hop_length_A: float
    moving_atom: int
    hop_type: int = -1
    partner_atom: int = -1
    partner_start_frac: list[float] = field(default_factory=list)
    partner_end_frac: list[float] = field(default_factory=list)
    partner_length_A: float = 0.0


@dataclass
class NEBResult(Result):
    """Outcome of one NEB calculation (metal units).

    ``barrier_forward_eV``/``barrier_backward_eV`` are ``None`` unless the NEB
    converged: a partial profile is kept for inspection but is not a barrier.

    Attributes
    ----------
    label
        What was computed (built-in case name or file names).
    model
        Model file name or pair style.
    cell
        Supercell description, e.g. ``3x3x3 conventional``, stated beside every barrier.
    n_atoms, n_images
        Atoms per image and images (= partitions) including the end points.
    converged
        Whether the final (climbing) stage stopped on its tolerance *and* the achieved NEB
        force is at most ``ftol_eV_A`` *and* no guard refused the band (``flags``).
    max_force_eV_A
        Largest NEB force on any replica at the end (the achieved force).
    ftol_eV_A
        Force tolerance asked for.
    reaction_coordinate
        Normalised reaction coordinate of each image (0 to 1).
    path_length_A
        Total path length.
    energies_eV
        Image energies relative to the initial image.
    climbing_image
        Index (0-based) of the climbing image; None when ``climb`` is False (``--no-climb``:
        no image climbed, and the result carries the ``no_climb`` flag).
    highest_image
        Index (0-based) of the highest image (the climbing image when climbing was on).
    climbing_image_positions_A
        Atomic positions of the highest image.
    case
        Built-in case name (``knockoff``, ``direct``, ``vacancy``), empty for user end points.
    model_sha256
        SHA-256 of the model file (empty for classical potentials): which model the barrier is for.
    a_A, n_cells
        Built-in cases: lattice parameter (Å) and conventional cells per side.
    flags
        Machine-readable reasons the barrier is not to be quoted as it stands
        (``FLAG_*`` codes of this module); the details are in ``message``. A flag in
        :data:`REFUSING_FLAGS` means no barrier is given at all.
    hop
        The hop class this NEB was built for (:func:`ionmd.neb.hops.hop_barrier`), else None.
    initial_energies_eV
        Image energies at the first NEB step, relative to the first image then.
    endpoint_drop_eV
        How much the first and the last replica lowered their energy *during* the NEB
        (LAMMPS relaxes the end replicas with the true forces): above the tolerance, they
        were not minima.
    endpoint_drift_A
        Largest displacement of any atom of the first and the last replica during the NEB.
    endpoint_separation_A
        Distance between the two end points (root of the summed squared minimum-image
        displacements) before and after their relaxation.
    """

    label: str
    model: str
    cell: str
    n_atoms: int
    n_images: int
    interpolation: str
    climb: bool
    converged: bool
    max_force_eV_A: float
    ftol_eV_A: float
    n_steps: list[int]
    stopping_criteria: list[str]
    reaction_coordinate: list[float]
    path_length_A: float
    energies_eV: list[float]
    barrier_forward_eV: float | None
    barrier_backward_eV: float | None
    climbing_image: int | None
    climbing_image_positions_A: list[list[float]] = field(default_factory=list)
    climbing_image_symbols: list[str] = field(default_factory=list)
    endpoints: dict[str, EndpointInfo] = field(default_factory=dict)
    workdir: str = ""
    message: str = ""
    case: str = ""
    model_sha256: str = ""
    a_A: float | None = None
    n_cells: int | None = None
    flags: list[str] = field(default_factory=list)
    hop: HopInfo | None = None
    highest_image: int = -1
    initial_energies_eV: list[float] = field(default_factory=list)
    endpoint_drop_eV: list[float] = field(default_factory=list)
    endpoint_drift_A: list[float] = field(default_factory=list)
    endpoint_separation_A: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.highest_image < 0 and self.energies_eV:
            self.highest_image = int(np.argmax(self.energies_eV))

    def add_flag(self, flag: str, note: str) -> None:
        """Record ``flag`` (once) and append ``note`` to ``message``."""
        if flag not in self.flags:
            self.flags.append(flag)
        self.message = f"{self.message}; {note}" if self.message else note

    @property
    def refused(self) -> bool:
        """Whether a guard refused the barrier (a flag in :data:`REFUSING_FLAGS`)."""
        return any(f in REFUSING_FLAGS for f in self.flags)

    def to_dict(self) -> dict:
        """Plain-JSON dictionary (:class:`ionmd.results.Result`; nested records as dicts)."""
        d = super().to_dict()
        d["endpoints"] = {k: asdict(v) for k, v in self.endpoints.items()}
        d["hop"] = asdict(self.hop) if self.hop is not None else None
        return d

    def write_json(self, path: Path) -> None:
        """Write the result as indented JSON (``to_json``)."""
        self.to_json(path)

    @classmethod
    def read_json(cls, path: Path) -> NEBResult:
        """Read a result written by :meth:`write_json`.

        Raises :class:`InputError` (naming the file) if it is not an NEB result; keys this
        version does not know are ignored.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read NEB result {path}: {exc}") from None
        known = {f.name for f in fields(cls)}
        missing = (
            [
                f.name
                for f in fields(cls)
                if f.name not in d and f.default is MISSING and f.default_factory is MISSING
            ]
            if isinstance(d, dict)
            else ["(not a JSON object)"]
        )
        if missing:
            raise InputError(
                f"{path} is not an ionmd NEB result: it has no key(s) {', '.join(missing)}"
            )
        d = {k: v for k, v in d.items() if k in known}
        d["endpoints"] = {k: EndpointInfo(**v) for k, v in d.get("endpoints", {}).items()}
        if d.get("hop") is not None:
            d["hop"] = HopInfo(**d["hop"])
        return cls.from_dict(d)

    def require_converged(self) -> None:
        """Raise :class:`IonmdError` unless the NEB converged and no guard refused it.

        The message gives the achieved force, or the guard's reason.
        """
        if FLAG_BELOW_ENDPOINT in self.flags:
            raise IonmdError(
                f"NEB ({self.label}, {self.cell}) refused: {self.message}; no barrier is reported "
                f"(partial profile in {self.workdir})"
            )
        if not self.converged:
            raise IonmdError(
                f"NEB ({self.label}, {self.cell}) did not converge within its step budget "
                f"{self.n_steps}: max NEB force {self.max_force_eV_A:.4g} eV/Å > ftol "
                f"{self.ftol_eV_A:g} eV/Å; no barrier is reported (partial profile in {self.workdir})"
            )

    def summary(self) -> str:
        """One line for the terminal."""
        atoms = "" if "atoms" in self.cell else f", {self.n_atoms} atoms"
        top = max(self.energies_eV)
        if FLAG_BELOW_ENDPOINT in self.flags:
            return (
                f"{self.label} [{self.model}, {self.cell}]: REFUSED (band below end point: end "
                f"points not minima); partial profile max {top:.4f} eV is not a barrier"
            )
        if self.converged and self.barrier_forward_eV is not None:
            kind = "" if self.climb else " (no climbing image: highest image, not the saddle)"
            return (
                f"{self.label} [{self.model}, {self.cell}{atoms}, {self.n_images} images]: "
                f"barrier forward {self.barrier_forward_eV:.4f} eV, backward "
                f"{self.barrier_backward_eV:.4f} eV{kind} (max NEB force {self.max_force_eV_A:.3g} eV/Å)"
            )
        return (
            f"{self.label} [{self.model}, {self.cell}]: NOT CONVERGED (max NEB force "
            f"{self.max_force_eV_A:.3g} eV/Å > {self.ftol_eV_A:g}); partial profile max "
            f"{top:.4f} eV is not a barrier"
        )


def plot_profile(result: NEBResult, path: Path) -> None:
    """Save the energy profile (eV vs normalised reaction coordinate) as a PNG."""
    from ionmd.analysis.plots import pyplot, save_png

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.6))
    x, e = result.reaction_coordinate, result.energies_eV
    ax.plot(x, e, "o-", color="C0" if result.converged else "C3")
    i = result.highest_image
    ax.plot(
        [x[i]],
        [e[i]],
        "*",
        ms=14,
        color="C1",
        label="climbing image" if result.climb else "highest image (no climbing)",
    )
    if result.barrier_forward_eV is not None:
        title = f"{result.label}: Ea = {result.barrier_forward_eV:.3f} eV ({result.cell})"
    elif FLAG_BELOW_ENDPOINT in result.flags:
        title = f"{result.label}: REFUSED (image below an end point)"
    else:
        title = f"{result.label}: NOT converged (F = {result.max_force_eV_A:.3g} eV/Å)"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"reaction coordinate (fraction of {result.path_length_A:.2f} Å)")
    ax.set_ylabel("energy relative to initial (eV)")
    ax.legend(fontsize=8)
    save_png(fig, path)


def _flag_end_replicas(result: NEBResult, values: list[float], limit: float, flag: str, note) -> None:
    """Flag ``flag`` for each end replica (initial, final) whose value exceeds ``limit``."""
    for name, value in zip(("initial", "final"), values, strict=False):
        if value > limit:
            result.add_flag(flag, note(name, value))


def apply_guards(
    result: NEBResult,
    below_tol_eV: float = BELOW_ENDPOINT_TOL_EV,
    max_endpoint_shift_A: float = MAX_ENDPOINT_SHIFT_A,
) -> NEBResult:
    """Check a parsed NEB result and flag (or refuse) what must not be quoted; in place.

    - An interior image more than ``below_tol_eV`` below either end point, at the start or
      at the end of the NEB, or an end replica that lowered its energy by more than that
      during the NEB: the end points are not minima, so the band is refused (flag
      ``band_below_endpoint``, no barrier).
    - ``max_force_eV_A`` above ``ftol_eV_A``: never converged (flag
      ``not_converged``, ``converged`` False, no barrier), whatever LAMMPS's stopping
      criterion said.
    - End points whose separation changed by more than ``max_endpoint_shift_A`` on
      relaxation (they relaxed toward or away from each other), or an end replica with an atom
      that moved more than that during the NEB: flag ``endpoint_moved`` (the barrier is kept,
      but it may not be the hop that was asked for). Local relaxation around a defect that
      keeps the hop (each end point moving by the same amount) is not flagged.
    - No climbing image: flag ``no_climb``; the barrier is the highest image of a plain
      band, a lower estimate of the saddle.

    Parameters
    ----------
    result
        The result to check (its ``energies_eV``, ``max_force_eV_A``, ``endpoints``, ``climb``).
    below_tol_eV
        Allowed dip (eV) of an image below an end point (energy precision).
    max_endpoint_shift_A
        Largest allowed displacement (Å) of any atom of an end point on relaxation.

    Returns
    -------
    NEBResult
        The same object, with ``flags``, ``message``, ``converged`` and the barriers updated.
    """
    if below_tol_eV < 0 or max_endpoint_shift_A <= 0:
        raise InputError(
            f"guard tolerances must be positive: below_tol_eV={below_tol_eV}, "
            f"max_endpoint_shift_A={max_endpoint_shift_A}"
        )
    for when, energies in (("at the end", result.energies_eV), ("at the start", result.initial_energies_eV)):
        e = np.asarray(energies, dtype=float)
        if e.size < 3:
            continue
        k = int(np.argmin(e[1:-1])) + 1
        dip = min(e[0], e[-1]) - e[k]
        if dip > below_tol_eV:
            result.add_flag(
                FLAG_BELOW_ENDPOINT,
                f"band below end point: end points not minima (image {k} is {dip * 1e3:.1f} meV "
                f"below the lower end point {when} of the NEB; tolerance {below_tol_eV * 1e3:.1f} meV)",
            )
    _flag_end_replicas(
        result,
        result.endpoint_drop_eV,
        below_tol_eV,
        FLAG_BELOW_ENDPOINT,
        lambda name, drop: f"band below end point: end points not minima (the {name} replica "
        f"relaxed {drop * 1e3:.1f} meV lower during the NEB)",
    )
    if not (result.max_force_eV_A <= result.ftol_eV_A):
        result.converged = False
        result.add_flag(
            FLAG_NOT_CONVERGED,
            f"not converged: max NEB force {result.max_force_eV_A:.4g} eV/Å > ftol "
            f"{result.ftol_eV_A:g} eV/Å (stopping criteria {result.stopping_criteria})",
        )
    elif not result.converged:
        result.add_flag(
            FLAG_NOT_CONVERGED,
            f"not converged: stopping criteria {result.stopping_criteria}",
        )
    if len(result.endpoint_separation_A) == 2:
        before, after = result.endpoint_separation_A
        if abs(before - after) > max_endpoint_shift_A:
            way = "toward" if after < before else "away from"
            result.add_flag(
                FLAG_ENDPOINT_MOVED,
                f"the end points relaxed {abs(before - after):.3f} Å {way} each other (separation "
                f"{before:.3f} -> {after:.3f} Å, the root of the summed squared displacements of "
                f"all atoms, so host relaxation counts too; limit {max_endpoint_shift_A:g} Å): the "
                "band may not be the hop asked for",
            )
    _flag_end_replicas(
        result,
        result.endpoint_drift_A,
        max_endpoint_shift_A,
        FLAG_ENDPOINT_MOVED,
        lambda name, drift: f"the {name} replica moved {drift:.3f} Å during the NEB (> "
        f"{max_endpoint_shift_A:g} Å): the band may not be the hop asked for",
    )
    if not result.climb:
        result.climbing_image = None  # no image climbed: nothing is claimed to be the saddle
        result.add_flag(
            FLAG_NO_CLIMB,
            "no climbing image (--no-climb): the barrier is the highest image of a plain band, "
            "not the saddle",
        )
    if result.refused or not result.converged:
        result.converged = False  # callers read converged as "has a barrier"
        result.barrier_forward_eV = None
        result.barrier_backward_eV = None
    return result
