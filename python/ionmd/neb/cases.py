"""One call for a built-in LiF hop with a model file: run, or reuse a converged result.

This is the library entry point for demos and scripts::

    from ionmd.neb.cases import run_case
    r = run_case("inputs/models/lif_mace.pt", "knockoff", "neb_knockoff", n_cells=3, n_images=5)
    print(r.barrier_forward_eV, r.cell)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ionmd.errors import InputError
from ionmd.filehash import file_sha256
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.result import NEBResult, plot_profile
from ionmd.neb.structures import LIF_A_A, MIN_REPORTED_CELLS, lif_case
from ionmd.neb.workflow import run_neb

RESULT_NAME = "neb.json"
PROFILE_NAME = "neb.png"


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
    species: Sequence[str] = ("Li", "F"),
    ftol_eV_A: float = 0.01,
    n_steps: int = 2000,
    climb_steps: int = 2000,
    ranks_per_image: int = 1,
    launcher: str = "mpirun",
    resume: bool = True,
    timeout_s: float | None = None,
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
        cells smaller than 3x3x3 get a warning in ``result.message``.
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
        label=f"LiF {case} hop",
        cell=case_cell(n_cells, a_A, len(initial)),
        timeout_s=timeout_s,
        ranks_per_image=ranks_per_image,
    )
    result.case, result.model_sha256, result.a_A, result.n_cells = case, sha, a_A, n_cells
    if n_cells < MIN_REPORTED_CELLS:
        m = MIN_REPORTED_CELLS
        note = (
            f"cell smaller than {m}x{m}x{m}: finite-size error is large, do not report this barrier"
        )
        result.message = f"{result.message}; {note}" if result.message else note
    result.write_json(stored)
    plot_profile(result, outdir / PROFILE_NAME)
    return result
