"""Command-line entry points of :mod:`ionmd.driver`: ``structure``, ``input md``, ``sweep``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ionmd.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``ionmd`` parser."""
    _register_structure(subparsers)
    _register_input(subparsers)
    _register_sweep(subparsers)


# --- ionmd structure ---------------------------------------------------------------------


def _register_structure(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "structure", help="build a LAMMPS data file (any ASE-readable file or a built-in)",
        description="Build a periodic structure with point defects and write a LAMMPS data "
                    "file whose header carries the atom-type order (type_map:) and the "
                    "removed/added atoms, plus a JSON sidecar OUTPUT.json.")
    p.add_argument("source", nargs="?", default=None,
                   help="structure file read by ASE (CIF, POSCAR, extxyz, LAMMPS data, ...) "
                        "or a built-in name (default: the built-in example, LiF)")
    p.add_argument("-o", "--output", required=True, help="LAMMPS data file to write")
    p.add_argument("--supercell", default="1", help="repeats: N or NxMxK (default 1)")
    p.add_argument("--min-length", dest="min_length_A", type=float, default=None,
                   metavar="L_A", help="instead of --supercell: the smallest diagonal "
                   "supercell whose perpendicular widths are all >= L_A Å")
    p.add_argument("--a", dest="a_A", type=float, default=None,
                   help="lattice constant in Å of a built-in structure (built-ins only)")
    p.add_argument("--vacancy", "--remove", dest="remove", action="append", default=[],
                   metavar="SPEC",
                   help="remove one atom: EL (any), EL@2c or EL@c (Wyckoff site), EL(2) "
                        "(site label), N (0-based atom index) or EL@x,y,z (fractional "
                        "position of the unit cell); repeatable")
    p.add_argument("--interstitial", "--add", dest="add", action="append", default=[],
                   metavar="SPEC",
                   help="add one atom: EL or EL@void (largest void), EL@x,y,z (fractional, "
                        "unit cell) or EL@NAME (a named site of a built-in); repeatable")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the choice among equivalent atoms/voids")
    p.add_argument("--types", default=None,
                   help="atom-type order as comma-separated symbols (default: first appearance)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_structure)


def _cmd_structure(args: argparse.Namespace) -> int:
    from ionmd.driver.structure import make_structure

    result = make_structure(
        args.output, source=args.source, supercell=args.supercell, a_A=args.a_A,
        add=args.add, remove=args.remove, seed=args.seed,
        types=args.types.split(",") if args.types else None, min_length_A=args.min_length_A)
    if args.json:
        print(result.to_json())
    else:
        counts = ", ".join(f"{n} {s}" for s, n in result.counts.items())
        print(f"wrote {result.path}: {result.n_atoms} atoms ({counts}); {result.description}")
        print("type_map: " + " ".join(f"{i}={s}" for i, s in result.type_map.items()))
        print(result.pair_coeff)
        from ionmd.driver.defects import DefectRecord

        for site in result.defect_sites:
            print("defect: " + DefectRecord(**site).summary())
        print(f"wrote {result.sidecar}")
    return 0


# --- ionmd input md ----------------------------------------------------------------------


def _register_input(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("input", help="write LAMMPS inputs from templates")
    sub = p.add_subparsers(dest="input_command", metavar="KIND")
    md = sub.add_parser(
        "md", help="molecular dynamics input (NVT/NPT, dumps, restarts)",
        description="Write a commented LAMMPS MD input from inputs/templates/md.lammps.in.")
    md.add_argument("data_file", help="LAMMPS data file with a type_map: header")
    md.add_argument("-o", "--output", default="in.lammps", help="input file to write")
    md.add_argument("--model", action="append", default=[], metavar="FILE.pt",
                    help="TorchScript model (pair_style mlip/torch); repeat for a committee: "
                         "the first drives, all give the deviation")
    md.add_argument("--pair-style", default=None, help="raw pair_style arguments instead")
    md.add_argument("--pair-coeff", action="append", default=[],
                    help="raw pair_coeff arguments (repeatable; {symbols} = type symbols)")
    md.add_argument("--T", dest="T_K", type=float, required=True, help="temperature, K")
    md.add_argument("--dt-fs", type=float, default=1.0, help="timestep, fs (default 1)")
    md.add_argument("--equil-steps", type=int, default=1000)
    md.add_argument("--prod-steps", type=int, default=10000)
    md.add_argument("--thermostat", choices=("nose-hoover", "csvr"), default="nose-hoover")
    md.add_argument("--ensemble", choices=("nvt", "npt"), default="nvt")
    md.add_argument("--P-bar", type=float, default=1.0, help="NPT pressure, bar")
    md.add_argument("--dump-every", type=int, default=100)
    md.add_argument("--species", default=None, help="species to dump, e.g. Li or Li,F (default all)")
    md.add_argument("--restart-every", type=int, default=1000)
    md.add_argument("--deviation-every", type=int, default=100,
                    help="steps between model-deviation lines with several models")
    md.add_argument("--seed", type=int, default=1)
    md.add_argument("--restart", default="none",
                    help="restart file to resume from (default: start from the data file)")
    md.set_defaults(func=_cmd_input_md)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _cmd_input_md(args: argparse.Namespace) -> int:
    from ionmd.driver.lammps_input import spec_for_data_file, write_md_input
    from ionmd.driver.potential import ModelSpec, model_from_path

    if args.model and args.pair_style:
        raise InputError("give --model or --pair-style, not both")
    if args.model:
        models = [model_from_path(m) for m in args.model]
        for m in models:
            if not Path(str(m.path)).is_file():
                print(f"ionmd input md: warning: model file '{m.path}' does not exist yet",
                      file=sys.stderr)
    elif args.pair_style:
        models = [ModelSpec(name="raw", pair_style=args.pair_style, pair_coeff=args.pair_coeff)]
    else:
        raise InputError("no model: give --model FILE.pt or --pair-style/--pair-coeff")
    spec = spec_for_data_file(
        args.data_file, models, args.T_K, dt_fs=args.dt_fs, n_equil=args.equil_steps,
        n_prod=args.prod_steps, thermostat=args.thermostat, ensemble=args.ensemble,
        P_bar=args.P_bar, dump_every=args.dump_every,
        species=args.species.split(",") if args.species else None,
        restart_every=args.restart_every, deviation_every=args.deviation_every, seed=args.seed,
        restart_default=args.restart,
        title=f"MD of {Path(args.data_file).name} at {args.T_K:g} K")
    path = write_md_input(spec, args.output)
    print(f"wrote {path}")
    return 0


# --- ionmd sweep -------------------------------------------------------------------------


def _register_sweep(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a temperature x model x seed sweep (resumable, MPI groups)",
        description="Run the Cartesian product defined in SWEEP.toml. Launch as "
                    "`mpirun -np P ionmd sweep SWEEP.toml --ranks-per-run R`.")
    p.add_argument("config", help="SWEEP.toml")
    p.add_argument("--ranks-per-run", type=int, default=1, help="MPI ranks of each LAMMPS run")
    p.add_argument("--resume", action="store_true",
                   help="continue: skip done runs, resume interrupted ones from restart files")
    p.add_argument("--retry-failed", action="store_true", help="with --resume, rerun failed runs")
    p.add_argument("--sweep-dir", default=None, help="override the TOML's sweep_dir")
    p.add_argument("--launcher", default=None,
                   help="command that starts a run on R ranks, with {ranks} "
                        "(default: [run] launcher or 'mpirun -np {ranks}')")
    p.add_argument("--allow-missing-models", action="store_true",
                   help="do not stop on missing model files; fail only their runs")
    p.add_argument("--gpus-per-node", type=int, default=0,
                   help="GPUs per node: each group gets one (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--progress-every", type=float, default=10.0, help="seconds between progress")
    p.add_argument("--check", action="store_true", help="validate the TOML and list runs only")
    slurm = p.add_argument_group("Slurm (write a batch script instead of running)")
    slurm.add_argument("--slurm", metavar="OUT.sbatch", default=None)
    slurm.add_argument("--nodes", type=int, default=1)
    slurm.add_argument("--tasks-per-node", type=int, default=None)
    slurm.add_argument("--time", default="24:00:00",
                       help="wall-time limit: Slurm's MM, MM:SS, HH:MM:SS, D-HH[:MM[:SS]] or "
                            "a duration such as 2h, 90m, 1d12h (default 24:00:00)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--account", default=None)
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ionmd.driver.sweep_config import load_sweep_config, plan_runs

    if args.retry_failed and not args.resume:
        raise InputError("--retry-failed needs --resume")
    config = load_sweep_config(args.config, sweep_dir=args.sweep_dir,
                               allow_missing_models=args.allow_missing_models or bool(args.slurm))
    if args.launcher:
        if "{ranks}" not in args.launcher:
            raise InputError("--launcher must contain {ranks}")
        config.launcher = args.launcher
    if args.slurm:
        from ionmd.driver.slurm import SlurmOptions, write_sbatch

        options = SlurmOptions(nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                               ranks_per_run=args.ranks_per_run,
                               tasks_per_node=args.tasks_per_node, time=args.time,
                               partition=args.partition, account=args.account)
        path = write_sbatch(config, args.slurm, options)
        print(f"wrote {path}: submit with `sbatch {path}`")
        return 0
    if args.check:
        runs = plan_runs(config)
        for run in runs:
            print(run.id)
        print(f"{len(runs)} runs in {config.sweep_dir}")
        return 0
    from ionmd.driver.sweep import (
        SweepInterrupted,
        exit_code_for_signal,
        flush_and_exit,
        linger_after_interrupt,
        run_sweep,
        world_rank,
    )

    try:
        summary = run_sweep(config, ranks_per_run=args.ranks_per_run, resume=args.resume,
                            retry_failed=args.retry_failed, gpus_per_node=args.gpus_per_node,
                            progress_every_s=args.progress_every)
    except SweepInterrupted:
        if world_rank() == 0:
            print("ionmd sweep: interrupted; running runs marked interrupted "
                  "(continue with --resume)", file=sys.stderr)
        else:
            linger_after_interrupt()
        flush_and_exit(exit_code_for_signal())
        return 1  # pragma: no cover
    if summary is None:
        return 0
    print(summary.to_json())
    return 0 if summary.failed == 0 and summary.done == summary.n_runs else 1
