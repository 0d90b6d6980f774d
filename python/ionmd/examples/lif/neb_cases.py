"""Built-in LiF NEB hops: rock-salt end points, and one resumable call for a model file.

Rock-salt LiF (Li on the fcc sites, F on the octahedral sites, lattice parameter ``a_A``):

``direct``
    A Li interstitial at a tetrahedral site (the centre of a small cube of edge
    a/2, surrounded by 4 Li and 4 F) hops straight to the neighbouring cube
    centre through the shared face.
``knockoff``
    Collinear interstitialcy: the interstitial pushes a lattice Li at a corner of
    its cube along [111] into the cube centre on the far side, and takes its
    lattice site.
``vacancy``
    A Li next to a Li vacancy hops into it along [110].

The defect sits in the middle of a supercell of ``n_cells`` x ``n_cells`` x
``n_cells`` conventional cells, so no atom crosses a periodic boundary on the
way. Atom order is the same in both end points (the NEB pairs atoms by index).

This is the library entry point for demos and scripts::

    from ionmd.examples.lif.neb_cases import run_case
    r = run_case("inputs/models/lif_mace.pt", "knockoff", "neb_knockoff", n_cells=3, n_images=5)
    print(r.barrier_forward_eV, r.cell)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from ionmd.errors import InputError
from ionmd.examples.lif.constants import LIF_A_ANGSTROM, LIF_SPECIES
from ionmd.filehash import file_sha256
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.result import (
    BELOW_ENDPOINT_TOL_EV,
    FLAG_SMALL_CELL,
    MAX_ENDPOINT_SHIFT_A,
    NEBResult,
    plot_profile,
)
from ionmd.neb.structures import atom_index_at
from ionmd.neb.workflow import run_neb

LIF_A_A = LIF_A_ANGSTROM
"""Default rock-salt LiF lattice parameter (Å) of the built-in cases."""

BUILTIN_CASES: tuple[str, ...] = ("direct", "knockoff", "vacancy")

MIN_REPORTED_CELLS = 3
"""Smallest supercell (conventional cells per side) whose barriers are reported as results."""

RESULT_NAME = "neb.json"
PROFILE_NAME = "neb.png"


def lif_supercell(n_cells: int = 3, a_A: float = LIF_A_A) -> Atoms:
    """Return perfect rock-salt LiF with ``n_cells**3`` conventional cells (8 atoms each)."""
    if n_cells < 1:
        raise InputError(f"n_cells must be >= 1, got {n_cells}")
    unit = bulk("LiF", "rocksalt", a=a_A, cubic=True)
    return unit.repeat((n_cells, n_cells, n_cells))


def lif_case(case: str, n_cells: int = 3, a_A: float = LIF_A_A) -> tuple[Atoms, Atoms]:
    """Return unrelaxed (initial, final) end points of a built-in LiF hop.

    Parameters
    ----------
    case
        One of :data:`BUILTIN_CASES`.
    n_cells
        Conventional cells per side of the cubic supercell (216 perfect-crystal atoms
        for 3; the interstitial cases then have 217 atoms, the vacancy case 215).
    a_A
        Lattice parameter in Å.
    """
    if case not in BUILTIN_CASES:
        raise InputError(
            f"unknown built-in NEB case {case!r}; choose one of {', '.join(BUILTIN_CASES)}"
        )
    if n_cells < 2:
        raise InputError(f"built-in case {case!r} needs n_cells >= 2, got {n_cells}")
    atoms = lif_supercell(n_cells, a_A)
    origin = np.full(3, (n_cells // 2) * a_A)  # a Li site near the middle of the box
    q = a_A / 4.0
    if case == "vacancy":
        i_vac = atom_index_at(atoms, origin, "Li")
        i_hop = atom_index_at(atoms, origin + np.array([2 * q, 2 * q, 0.0]), "Li")
        initial = atoms.copy()
        final = atoms.copy()
        final.positions[i_hop] = atoms.positions[i_vac]
        del initial[i_vac]
        del final[i_vac]
        return initial, final
    site_a = origin + np.array([q, q, q])  # centre of the small cube with Li corner at origin
    initial = atoms.copy()
    initial.append("Li")
    initial.positions[-1] = site_a
    final = initial.copy()
    if case == "direct":
        final.positions[-1] = site_a + np.array([2 * q, 0.0, 0.0])
    else:  # knockoff: interstitial takes the corner site, the corner Li goes on along [111]
        i_corner = atom_index_at(atoms, origin, "Li")
        final.positions[-1] = origin
        final.positions[i_corner] = origin - np.array([q, q, q])
    return initial, final


def case_label(case: str) -> str:
    """The label stored with a built-in case's result, e.g. ``LiF knockoff hop``."""
    return f"LiF {case} hop"


def case_cell(n_cells: int, a_A: float, n_atoms: int) -> str:
    """The cell description stored beside every barrier of a built-in case."""
    return f"{n_cells}x{n_cells}x{n_cells} conventional, a = {a_A:g} Å, {n_atoms} atoms"


def reusable(
    result: NEBResult,
    sha256: str,
    case: str,
    n_cells: int,
    a_A: float,
    n_images: int,
    ftol_eV_A: float,
) -> bool:
    """Whether a stored result is a converged run of exactly this calculation."""
    return (
        result.converged
        and not result.refused
        and result.barrier_forward_eV is not None
        and result.model_sha256 == sha256
        and result.case == case
        and result.n_cells == n_cells
        and result.a_A is not None
        and abs(result.a_A - a_A) < 1e-9
        and result.n_images == n_images
        and result.ftol_eV_A <= ftol_eV_A
    )


def run_case(
    model: str | Path,
    case: str,
    outdir: str | Path,
    n_cells: int = 3,
    n_images: int = 5,
    a_A: float = LIF_A_A,
    species: Sequence[str] = LIF_SPECIES,
    ftol_eV_A: float = 0.01,
    n_steps: int = 2000,
    climb_steps: int = 2000,
    ranks_per_image: int = 1,
    launcher: str = "mpirun",
    resume: bool = True,
    timeout_s: float | None = None,
    max_endpoint_shift_A: float = MAX_ENDPOINT_SHIFT_A,
    below_tol_eV: float = BELOW_ENDPOINT_TOL_EV,
) -> NEBResult:
    """Climbing-image NEB of a built-in LiF hop with a TorchScript model, through LAMMPS.

    The end points are relaxed at fixed cell, ``n_images`` IDPP images are run on
    ``n_images`` MPI partitions (``mpirun -np n_images*ranks_per_image lmp -partition
    n_images x ranks_per_image``), and ``outdir/neb.json`` and ``outdir/neb.png`` are written.

    Parameters
    ----------
    model
        TorchScript model file, run by ``pair_style mlip/torch``.
    case
        ``knockoff`` (interstitialcy), ``direct`` (interstitial hop) or ``vacancy``.
    outdir
        Working directory: LAMMPS inputs and logs, ``neb.json``, ``neb.png``.
    n_cells
        Conventional cells per side (3: 217 atoms for the interstitial cases). Barriers from
        cells smaller than 3x3x3 get the ``small_cell`` flag and a note in ``result.message``.
    n_images
        Images including both end points; LAMMPS runs one per MPI partition, so this is
        also the number of partitions.
    a_A
        Lattice parameter of rock-salt LiF (Å).
    species
        Chemical symbol of each LAMMPS type, in type order.
    ftol_eV_A
        NEB force tolerance (eV/Å) of both stages.
    n_steps, climb_steps
        Step budgets of the plain and the climbing-image stage.
    ranks_per_image
        MPI ranks in each partition (1 on a small machine).
    launcher
        ``mpirun`` (the ``lmp`` executable) or ``mpi4py`` (LAMMPS from Python on each rank).
    resume
        Return the stored ``outdir/neb.json`` without running anything when it is a
        converged result of the same model file (SHA-256), case, cell, lattice parameter
        and image count, at this ``ftol_eV_A`` or tighter.
    timeout_s
        Abandon the LAMMPS NEB after this many seconds (:class:`IonmdError`).
    max_endpoint_shift_A, below_tol_eV
        Guards of :func:`ionmd.neb.result.apply_guards`.

    Returns
    -------
    NEBResult
        ``converged`` False and no barrier when a step budget ran out (not an exception).
    """
    model = Path(model)
    if not model.is_file():
        raise InputError(f"model file {model} does not exist")
    outdir = Path(outdir)
    sha = file_sha256(model)
    stored = outdir / RESULT_NAME
    if resume and stored.is_file():
        old = NEBResult.read_json(stored)
        if reusable(old, sha, case, n_cells, a_A, n_images, ftol_eV_A):
            return old
    initial, final = lif_case(case, n_cells, a_A)
    settings = NEBSettings(ftol_eV_A=ftol_eV_A, n1_steps=n_steps, n2_steps=climb_steps)
    result = run_neb(
        initial,
        final,
        Potential.from_model(model, list(species)),
        outdir,
        n_images=n_images,
        settings=settings,
        launcher=launcher,
        label=case_label(case),
        cell=case_cell(n_cells, a_A, len(initial)),
        timeout_s=timeout_s,
        ranks_per_image=ranks_per_image,
        max_endpoint_shift_A=max_endpoint_shift_A,
        below_tol_eV=below_tol_eV,
    )
    result.case, result.model_sha256, result.a_A, result.n_cells = case, sha, a_A, n_cells
    flag_small_cell(result, n_cells)
    result.write_json(stored)
    plot_profile(result, outdir / PROFILE_NAME)
    return result


def flag_small_cell(result: NEBResult, n_cells: int) -> None:
    """Flag ``small_cell`` on a result from fewer than :data:`MIN_REPORTED_CELLS` cells per side."""
    if n_cells < MIN_REPORTED_CELLS:
        m = MIN_REPORTED_CELLS
        result.add_flag(
            FLAG_SMALL_CELL,
            f"cell smaller than {m}x{m}x{m}: finite-size error is large, do not report this barrier",
        )
