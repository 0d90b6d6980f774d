"""``ionmd neb``: a migration barrier by climbing-image NEB on N LAMMPS partitions.

Generic: any two end points (``--initial``/``--final``), any species (from ``--species``,
the model's metadata or the data file's type map). ``--case`` is a convenience for the
built-in hops of the LiF example (:mod:`ionmd.examples.lif.neb_cases`), imported only then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ionmd.errors import InputError


def register(subparsers) -> None:
    """Add the ``neb`` sub-command."""
    from ionmd.neb.interpolate import METHODS
    from ionmd.neb.result import BELOW_ENDPOINT_TOL_EV, MAX_ENDPOINT_SHIFT_A
    from ionmd.neb.runner import LAUNCHERS

    p = subparsers.add_parser(
        "neb",
        help="migration barrier by climbing-image NEB (LAMMPS, one replica per MPI partition)",
        description=(
            "Relax two end points at fixed cell, interpolate images, run a climbing-image NEB with "
            "`mpirun -np N lmp -partition Nx1` and write the barrier (JSON) and profile (PNG). "
            "Exit status 2 and no barrier if the NEB does not converge or a guard refuses it "
            "(an image below an end point)."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--case",
        help="a built-in hop of the LiF example (ionmd.examples.lif.neb_cases: direct, "
        "knockoff, vacancy)",
    )
    src.add_argument(
        "--initial",
        type=Path,
        help="initial end point (ASE-readable, or LAMMPS data with type_map)",
    )
    src.add_argument(
        "--reference",
        type=Path,
        help="structure for a hop given by --hop-start/--hop-end (ionmd.neb.hops): the end "
        "points are this structure with its defect moved by one hop",
    )
    p.add_argument("--final", type=Path, help="final end point (same atoms in the same order)")
    for flag, what in (
        ("--hop-start", "start site of the moving atom"),
        ("--hop-end", "end site (occupied: vacancy hop; empty: the atom at the start moves there)"),
    ):
        p.add_argument(
            flag, type=float, nargs=3, metavar=("FA", "FB", "FC"),
            help=f"--reference: {what}, fractional coordinates",
        )  # fmt: skip
    p.add_argument(
        "--hop-species", help="--reference: element of an added interstitial (both sites empty)"
    )
    p.add_argument("--hop-label", default="", help="--reference: label stored with the result")
    p.add_argument(
        "--repeat",
        type=int,
        nargs=3,
        default=[1, 1, 1],
        metavar=("NA", "NB", "NC"),
        help="--reference: supercell of the reference to run the hop in (default 1 1 1)",
    )
    p.add_argument(
        "--n-cells",
        type=int,
        default=3,
        help="--case: conventional cells per side (default 3)",
    )
    p.add_argument(
        "--a",
        type=float,
        default=None,
        help="--case: lattice parameter in Å (default: the example's own)",
    )
    pot = p.add_mutually_exclusive_group(required=True)
    pot.add_argument("--model", type=Path, help="TorchScript model, run by pair_style mlip/torch")
    pot.add_argument("--pair-style", help="classical potential: the pair_style arguments")
    p.add_argument(
        "--pair-coeff",
        action="append",
        default=[],
        help="pair_coeff arguments (repeat for several lines)",
    )
    p.add_argument(
        "--species",
        nargs="+",
        help="chemical symbol of each LAMMPS type, in order (default: the model's species, "
        "else the data file's type map; --case: the LiF example's)",
    )
    p.add_argument(
        "--images",
        type=int,
        default=5,
        help="images including end points = MPI partitions (default 5)",
    )
    p.add_argument("--interpolation", choices=METHODS, default="idpp")
    p.add_argument("--no-relax", action="store_true", help="do not relax the end points first")
    p.add_argument(
        "--no-climb",
        action="store_true",
        help="skip the climbing-image stage (the result is flagged no_climb: not a saddle)",
    )
    p.add_argument(
        "--ftol", type=float, default=0.01, help="NEB force tolerance in eV/Å (default 0.01)"
    )
    p.add_argument("--steps", type=int, default=2000, help="step budget of the plain NEB stage")
    p.add_argument(
        "--climb-steps", type=int, default=2000, help="step budget of the climbing-image stage"
    )
    p.add_argument("--spring", type=float, default=5.0, help="spring constant in eV/Å^2")
    p.add_argument(
        "--max-endpoint-shift",
        type=float,
        default=MAX_ENDPOINT_SHIFT_A,
        help="flag an end point whose relaxation moves an atom further than this, in Å "
        f"(default {MAX_ENDPOINT_SHIFT_A})",
    )
    p.add_argument(
        "--below-endpoint-tol",
        type=float,
        default=BELOW_ENDPOINT_TOL_EV,
        help="refuse the band if an image is more than this below an end point, in eV "
        f"(default {BELOW_ENDPOINT_TOL_EV})",
    )
    p.add_argument("--launcher", choices=LAUNCHERS, default="mpirun")
    p.add_argument(
        "--ranks-per-image",
        type=int,
        default=1,
        help="MPI ranks in each partition (default 1; total ranks = images x this)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="--case with --model: reuse a converged --workdir/neb.json of the same "
        "model file (SHA-256), case, cell, a and images instead of rerunning",
    )
    p.add_argument("--workdir", type=Path, default=Path("neb_run"))
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds before the NEB run is abandoned"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``ionmd neb``."""
    from ionmd.neb.result import plot_profile

    if args.case and args.model:
        from ionmd.examples.lif.constants import LIF_SPECIES
        from ionmd.examples.lif.neb_cases import LIF_A_A, run_case

        result = run_case(
            args.model,
            args.case,
            args.workdir,
            n_cells=args.n_cells,
            n_images=args.images,
            a_A=LIF_A_A if args.a is None else args.a,
            species=args.species or LIF_SPECIES,
            ftol_eV_A=args.ftol,
            n_steps=args.steps,
            climb_steps=0 if args.no_climb else args.climb_steps,
            ranks_per_image=args.ranks_per_image,
            launcher=args.launcher,
            resume=args.resume,
            timeout_s=args.timeout,
            max_endpoint_shift_A=args.max_endpoint_shift,
            below_tol_eV=args.below_endpoint_tol,
        )
    elif args.reference is not None:
        result = _run_hop(args)
    else:
        result = _run_general(args)
        result.write_json(args.workdir / "neb.json")
        plot_profile(result, args.workdir / "neb.png")
    for name, ep in result.endpoints.items():
        print(
            f"{name} end point: E = {ep.energy_eV:.4f} eV, moved up to {ep.max_displacement_A:.3f} Å on relaxation"
        )
    print("energies (eV) along the path:", " ".join(f"{e:.4f}" for e in result.energies_eV))
    print(result.summary())
    if result.flags:
        print(f"flags: {', '.join(result.flags)}", file=sys.stderr)
    if result.message:
        print(f"note: {result.message}", file=sys.stderr)
    print(f"wrote {args.workdir / 'neb.json'} and {args.workdir / 'neb.png'}")
    result.require_converged()
    return 0


def species_of_model(model: Path) -> list[str]:
    """The model's species (its metadata), for ``--model`` without ``--species``."""
    from ionmd.neb.potential import model_species

    return model_species(model)


def species_of_data_file(path: Path) -> list[str] | None:
    """LAMMPS type order of a data file (its type map), None for other formats."""
    from ionmd.lammpsio.datafile import read_type_map
    from ionmd.neb.io import LAMMPS_DATA_SUFFIXES

    if path.suffix in LAMMPS_DATA_SUFFIXES:
        tmap = read_type_map(path)
        return [tmap[k] for k in sorted(tmap)]
    return None


def _potential(args: argparse.Namespace, file_species: list[str] | None):
    """The model or classical potential, with its species in LAMMPS type order."""
    from ionmd.neb.potential import Potential

    if args.model:
        return Potential.from_model(args.model, args.species or species_of_model(args.model))
    species = args.species or file_species
    if not species:
        raise InputError(
            "--pair-style needs --species (the symbol of each LAMMPS type, in order) "
            "unless the structure is a LAMMPS data file with a type map"
        )
    return Potential.from_lines(args.pair_style, args.pair_coeff, species)


def _settings(args: argparse.Namespace):
    from ionmd.neb.lammps_input import NEBSettings

    return NEBSettings(
        ftol_eV_A=args.ftol,
        n1_steps=args.steps,
        n2_steps=0 if args.no_climb else args.climb_steps,
        spring_eV_A2=args.spring,
    )


def _run_hop(args: argparse.Namespace):
    """One hop of a reference structure (``--reference`` with ``--hop-start``/``--hop-end``)."""
    from ionmd.neb.hops import Hop, hop_barrier
    from ionmd.neb.io import read_structure

    if args.hop_start is None or args.hop_end is None:
        raise InputError("--reference needs --hop-start and --hop-end (fractional coordinates)")
    if args.no_relax:
        raise InputError("--reference always relaxes the hop's end points; drop --no-relax")
    reference = read_structure(args.reference)
    hop = Hop(args.hop_label, args.hop_start, args.hop_end, args.hop_species)
    return hop_barrier(
        reference,
        hop,
        _potential(args, species_of_data_file(args.reference)),
        args.workdir,
        species=args.hop_species,
        repeat=args.repeat,
        n_images=args.images,
        settings=_settings(args),
        interpolation=args.interpolation,
        launcher=args.launcher,
        timeout_s=args.timeout,
        ranks_per_image=args.ranks_per_image,
        max_endpoint_shift_A=args.max_endpoint_shift,
        below_tol_eV=args.below_endpoint_tol,
    )


def _run_general(args: argparse.Namespace):
    """Structures from files (or a built-in example case with a classical potential)."""
    from ionmd.neb.io import read_structure
    from ionmd.neb.workflow import run_neb

    file_species: list[str] | None = None
    if args.case:
        from ionmd.examples.lif.neb_cases import (
            LIF_A_A,
            case_cell,
            case_label,
            flag_small_cell,
            lif_case,
        )

        a_A = LIF_A_A if args.a is None else args.a
        initial, final = lif_case(args.case, args.n_cells, a_A)
        label = case_label(args.case)
        cell = case_cell(args.n_cells, a_A, len(initial))
    else:
        if args.final is None:
            raise InputError("--initial needs --final")
        initial, final = read_structure(args.initial), read_structure(args.final)
        file_species = species_of_data_file(args.initial)
        label = f"{args.initial.name} -> {args.final.name}"
        cell = ""
    potential = _potential(args, file_species)
    settings = _settings(args)
    result = run_neb(
        initial,
        final,
        potential,
        args.workdir,
        n_images=args.images,
        interpolation=args.interpolation,
        settings=settings,
        relax=not args.no_relax,
        launcher=args.launcher,
        label=label,
        cell=cell,
        timeout_s=args.timeout,
        ranks_per_image=args.ranks_per_image,
        max_endpoint_shift_A=args.max_endpoint_shift,
        below_tol_eV=args.below_endpoint_tol,
    )
    if args.case:
        result.case, result.a_A, result.n_cells = args.case, a_A, args.n_cells
        flag_small_cell(result, args.n_cells)
    return result
