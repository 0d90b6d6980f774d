"""The whole NEB chain: check, relax, interpolate, write, run, parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.filehash import file_sha256
from ionmd.neb.interpolate import make_images
from ionmd.neb.lammps_input import NEBSettings, write_neb_input
from ionmd.neb.parse import parse_universe_log, read_dump_positions_A, stopping_criteria
from ionmd.neb.potential import Potential
from ionmd.neb.relax import RelaxResult, relax_endpoints
from ionmd.neb.result import (
    BELOW_ENDPOINT_TOL_EV,
    MAX_ENDPOINT_SHIFT_A,
    EndpointInfo,
    NEBResult,
    apply_guards,
)
from ionmd.neb.runner import run_neb_partitions
from ionmd.neb.structures import (
    check_endpoints,
    max_displacement_A,
    on_relaxed_host,
    rms_distance_A,
)

CONVERGED_CRITERIA = ("force tolerance", "energy tolerance")

SAME_MINIMUM_FRACTION = 0.25
"""Relaxed end points closer than this fraction of their starting separation count as one minimum."""


def check_relaxed_endpoints(
    start: tuple[Atoms, Atoms],
    relaxed: tuple[Atoms, Atoms],
    names: tuple[str, str] = ("initial", "final"),
) -> None:
    """Raise :class:`InputError` if an end point relaxed into the other's basin."""
    d0 = rms_distance_A(*start)
    d = rms_distance_A(*relaxed)
    for k, other in ((0, 1), (1, 0)):
        to_own = rms_distance_A(relaxed[k], start[k])
        to_other = rms_distance_A(relaxed[k], start[other])
        if to_other < to_own:
            raise InputError(
                f"the {names[k]} end point relaxed into the {names[other]} one: after relaxation it is "
                f"{to_other:.3f} Å from the {names[other]} start but {to_own:.3f} Å from its own; "
                "it is not a separate minimum of this model"
            )
    if d < SAME_MINIMUM_FRACTION * d0:
        raise InputError(
            f"the end points relaxed into the same minimum: {d:.3f} Å apart after relaxation "
            f"(were {d0:.3f} Å apart)"
        )


def _final_positions(workdir: Path, images: list[Atoms]) -> dict[int, np.ndarray]:
    """Each replica's final positions (from ``final.<k>.dump``), unwrapped next to its input."""
    out = {}
    for k, ref in enumerate(images):
        dump = workdir / f"final.{k}.dump"
        if dump.is_file():
            out[k] = _unwrap_to(ref.positions, read_dump_positions_A(dump), ref.cell.array)
    return out


def _with_positions(atoms: Atoms, positions: np.ndarray) -> Atoms:
    moved = atoms.copy()
    moved.positions = positions
    return moved


def _unwrap_to(reference: np.ndarray, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    d = positions - reference
    frac = np.linalg.solve(cell.T, d.T).T
    frac -= np.round(frac)
    return reference + frac @ cell


def run_neb(
    initial: Atoms,
    final: Atoms,
    potential: Potential,
    workdir: Path,
    n_images: int = 5,
    interpolation: str = "idpp",
    settings: NEBSettings | None = None,
    relax: bool = True,
    relax_ftol_eV_A: float = 1e-3,
    launcher: str = "mpirun",
    label: str = "",
    cell: str = "",
    timeout_s: float | None = None,
    ranks_per_image: int = 1,
    max_endpoint_shift_A: float = MAX_ENDPOINT_SHIFT_A,
    below_tol_eV: float = BELOW_ENDPOINT_TOL_EV,
) -> NEBResult:
    """Compute a migration barrier between two end points with a LAMMPS NEB.

    Parameters
    ----------
    initial, final
        End points with the same atoms in the same order and the same cell.
    potential
        The model as LAMMPS lines.
    workdir
        Where the LAMMPS files, logs, ``neb.json`` inputs go.
    n_images
        Images including the end points; one MPI partition each.
    interpolation
        ``idpp`` or ``linear``.
    settings
        NEB controls; ``n2_steps > 0`` turns on the climbing image.
    relax
        Relax both end points at fixed cell first (LAMMPS ``minimize``): the initial, then the
        final from the relaxed initial's host (:func:`ionmd.neb.structures.on_relaxed_host`).
    launcher
        ``mpirun`` (``mpirun -np N lmp -partition Nx1``) or ``mpi4py``.
    label, cell
        Descriptions stored in the result (``cell`` is stated beside every barrier).
    timeout_s
        Abandon the LAMMPS NEB after this many seconds.
    ranks_per_image
        MPI ranks per partition (``-partition n_images x ranks_per_image``).
    max_endpoint_shift_A
        An end point whose relaxation moves any atom further than this (Å) is flagged
        (``endpoint_moved``).
    below_tol_eV
        An image more than this (eV) below an end point refuses the band
        (``band_below_endpoint``).

    Returns
    -------
    NEBResult
        ``converged`` False (and no barrier) if the step budget ran out or the final force
        is above ``ftol``; guards (:func:`ionmd.neb.result.apply_guards`) set ``flags``.
    """
    settings = settings or NEBSettings()
    check_endpoints(initial, final)
    missing = sorted(set(initial.get_chemical_symbols()) - set(potential.symbols))
    if missing:
        raise InputError(
            f"element(s) {', '.join(missing)} are not among the model's types {potential.symbols}"
        )
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    endpoints: dict[str, EndpointInfo] = {}
    separation = [rms_distance_A(initial, final)]
    if relax:
        # the final end point relaxes from the relaxed initial's host (on_relaxed_host), so that
        # both end points lie in one variant of a host the model would distort
        rel: list[RelaxResult] = relax_endpoints([initial], potential, relax_ftol_eV_A)
        final_start = on_relaxed_host(initial, final, rel[0].atoms)
        rel += relax_endpoints([final_start], potential, relax_ftol_eV_A)
        check_relaxed_endpoints((initial, final), (rel[0].atoms, rel[1].atoms))
        for name, r, start in zip(("initial", "final"), rel, (initial, final), strict=True):
            endpoints[name] = EndpointInfo(
                r.energy_eV, max_displacement_A(start, r.atoms), r.max_force_eV_A, r.n_steps
            )
        initial, final = rel[0].atoms, rel[1].atoms
    separation.append(rms_distance_A(initial, final))
    images = make_images(initial, final, n_images, interpolation)
    write_neb_input(
        workdir,
        images,
        potential.lines(in_process=launcher == "mpi4py"),
        potential.symbols,
        settings,
    )
    run_neb_partitions(
        workdir, n_images, launcher=launcher, timeout_s=timeout_s, ranks_per_image=ranks_per_image
    )
    result = collect_result(
        workdir, images, settings, potential, interpolation, label, cell, endpoints
    )
    result.endpoint_separation_A = [float(x) for x in separation]
    return apply_guards(result, below_tol_eV=below_tol_eV, max_endpoint_shift_A=max_endpoint_shift_A)


def collect_result(
    workdir: Path,
    images: list[Atoms],
    settings: NEBSettings,
    potential: Potential,
    interpolation: str,
    label: str,
    cell: str,
    endpoints: dict[str, EndpointInfo],
) -> NEBResult:
    """Build the :class:`NEBResult` from the logs and dumps in ``workdir`` (guards not applied)."""
    stages = parse_universe_log(workdir / "log.lammps")
    last = stages[-1]
    criteria = stopping_criteria(workdir / "log.lammps.0")
    climb = settings.n2_steps > 0
    expected = 2 if climb else 1
    max_force = float(last.max_replica_force_eV_A[-1])
    converged = (
        len(criteria) >= expected
        and criteria[expected - 1] in CONVERGED_CRITERIA
        and max_force <= settings.ftol_eV_A
    )
    e = np.array(last.energies_eV[-1])
    e0 = np.array(stages[0].energies_eV[0])
    rel = (e - e[0]).tolist()
    top = int(np.argmax(e))
    final_pos = _final_positions(workdir, images)
    pos = final_pos[top].round(6).tolist() if top in final_pos else []
    drift = [
        max_displacement_A(images[k], _with_positions(images[k], final_pos[k]))
        for k in (0, len(images) - 1)
        if k in final_pos
    ]
    result = NEBResult(
        label=label or workdir.name,
        model=potential.label,
        cell=cell or "x".join(f"{x:.3f}" for x in images[0].cell.lengths()) + " Å",
        n_atoms=len(images[0]),
        n_images=len(images),
        interpolation=interpolation,
        climb=climb,
        converged=bool(converged),
        max_force_eV_A=max_force,
        ftol_eV_A=settings.ftol_eV_A,
        n_steps=[s.steps[-1] - s.steps[0] for s in stages],
        stopping_criteria=criteria,
        reaction_coordinate=[float(x) for x in last.reaction_coordinate[-1]],
        path_length_A=float(last.path_length_A[-1]),
        energies_eV=[float(x) for x in rel],
        barrier_forward_eV=float(last.barrier_forward_eV[-1]) if converged else None,
        barrier_backward_eV=float(last.barrier_backward_eV[-1]) if converged else None,
        climbing_image=top if climb else None,
        highest_image=top,
        climbing_image_positions_A=pos,
        initial_energies_eV=[float(x) for x in e0 - e0[0]],
        endpoint_drop_eV=[float(e0[0] - e[0]), float(e0[-1] - e[-1])],
        endpoint_drift_A=[float(d) for d in drift],
        climbing_image_symbols=images[top].get_chemical_symbols(),
        endpoints=endpoints,
        workdir=str(workdir),
        model_sha256=file_sha256(potential.model_file) if potential.model_file else "",
    )
    return result
