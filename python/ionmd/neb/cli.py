"""``ionmd neb``: a migration barrier by climbing-image NEB on N LAMMPS partitions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ionmd.errors import InputError


def register(subparsers) -> None:
    """Add the ``neb`` sub-command."""
    from ionmd.neb.interpolate import METHODS
    from ionmd.neb.runner import LAUNCHERS
    from ionmd.neb.structures import BUILTIN_CASES, LIF_A_A

    p = subparsers.add_parser(
        "neb",
        help="migration barrier by climbing-image NEB (LAMMPS, one replica per MPI partition)",
        description=(
            "Relax two end points at fixed cell, interpolate images, run a climbing-image NEB with "
            "`mpirun -np N lmp -partition Nx1` and write the barrier (JSON) and profile (PNG). "
            "Exit status 2 and no barrier if the NEB does not converge."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--case", choices=BUILTIN_CASES, help="built-in rock-salt LiF hop")
    src.add_argument(
        "--initial",
        type=Path,
        help="initial end point (ASE-readable, or LAMMPS data with type_map)",
    )
    p.add_argument("--final", type=Path, help="final end point (same atoms in the same order)")
    p.add_argument(
        "--n-cells",
        type=int,
        default=3,
        help="built-in cases: conventional cells per side (default 3 = 216 sites)",
    )
    p.add_argument(
        "--a",
        type=float,
        default=LIF_A_A,
        help=f"built-in cases: lattice parameter in Å (default {LIF_A_A})",
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
        help="chemical symbol of each LAMMPS type, in order (default Li F for built-in cases)",
    )
    p.add_argument(
        "--images",
        type=int,
        default=5,
        help="images including end points = MPI partitions (default 5)",
    )
    p.add_argument("--interpolation", choices=METHODS, default="idpp")
    p.add_argument("--no-relax", action="store_true", help="do not relax the end points first")
    p.add_argument("--no-climb", action="store_true", help="skip the climbing-image stage")
    p.add_argument(
        "--ftol", type=float, default=0.01, help="NEB force tolerance in eV/Å (default 0.01)"
    )
    p.add_argument("--steps", type=int, default=2000, help="step budget of the plain NEB stage")
    p.add_argument(
        "--climb-steps", type=int, default=2000, help="step budget of the climbing-image stage"
    )
    p.add_argument("--spring", type=float, default=5.0, help="spring constant in eV/Å^2")
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
        help="built-in case with --model: reuse a converged --workdir/neb.json of the same "
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
        from ionmd.neb.cases import run_case

        result = run_case(
            args.model,
            args.case,
            args.workdir,
            n_cells=args.n_cells,
            n_images=args.images,
            a_A=args.a,
            species=args.species or ("Li", "F"),
            ftol_eV_A=args.ftol,
            n_steps=args.steps,
            climb_steps=0 if args.no_climb else args.climb_steps,
            ranks_per_image=args.ranks_per_image,
            launcher=args.launcher,
            resume=args.resume,
            timeout_s=args.timeout,
        )
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
    if result.message:
        print(f"note: {result.message}", file=sys.stderr)
    print(f"wrote {args.workdir / 'neb.json'} and {args.workdir / 'neb.png'}")
    result.require_converged()
    return 0


def _run_general(args: argparse.Namespace):
    """Structures from files (or a built-in case with a classical potential)."""
    from ionmd.neb.io import read_structure
    from ionmd.neb.lammps_input import NEBSettings
    from ionmd.neb.potential import Potential
    from ionmd.neb.structures import MIN_REPORTED_CELLS, lif_case
    from ionmd.neb.workflow import run_neb

    if args.case:
        initial, final = lif_case(args.case, args.n_cells, args.a)
        species = args.species or ["Li", "F"]
        label = f"LiF {args.case} hop"
        cell = f"{args.n_cells}x{args.n_cells}x{args.n_cells} conventional, a = {args.a} Å, {len(initial)} atoms"
    else:
        if args.final is None:
            raise InputError("--initial needs --final")
        initial, final = read_structure(args.initial), read_structure(args.final)
        species = args.species or sorted(
            set(initial.get_chemical_symbols()), key=initial.get_chemical_symbols().index
        )
        label = f"{args.initial.name} -> {args.final.name}"
        cell = ""
    if args.model:
        potential = Potential.from_model(args.model, species)
    else:
        if not args.species:
            raise InputError(
                "--pair-style needs --species (the symbol of each LAMMPS type, in order)"
            )
        potential = Potential.from_lines(args.pair_style, args.pair_coeff, species)
    settings = NEBSettings(
        ftol_eV_A=args.ftol,
        n1_steps=args.steps,
        n2_steps=0 if args.no_climb else args.climb_steps,
        spring_eV_A2=args.spring,
    )
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
    )
    if args.case:
        result.case, result.a_A, result.n_cells = args.case, args.a, args.n_cells
        if args.n_cells < MIN_REPORTED_CELLS:
            result.message = (result.message + "; " if result.message else "") + (
                f"cell smaller than {MIN_REPORTED_CELLS}x{MIN_REPORTED_CELLS}x{MIN_REPORTED_CELLS}: "
                "finite-size error is large, do not report this barrier"
            )
    return result
