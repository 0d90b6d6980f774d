"""Launching a LAMMPS NEB on N partitions: ``mpirun ... lmp -partition Nx1`` or mpi4py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ionmd.errors import InputError, IonmdError
from ionmd.neb.parse import lammps_errors

LAUNCHERS: tuple[str, ...] = ("mpirun", "mpi4py")


def neb_command(
    n_partitions: int,
    launcher: str = "mpirun",
    lmp: str = "lmp",
    mpirun: str = "mpirun",
    input_name: str = "in.neb",
    ranks_per_image: int = 1,
) -> list[str]:
    """The command line that runs ``input_name`` with one replica per partition.

    Each of the ``n_partitions`` partitions has ``ranks_per_image`` MPI ranks.
    """
    if launcher not in LAUNCHERS:
        raise InputError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if n_partitions < 3:
        raise InputError(f"an NEB needs at least 3 partitions (replicas), got {n_partitions}")
    if ranks_per_image < 1:
        raise InputError(f"ranks per image must be >= 1, got {ranks_per_image}")
    n_ranks = str(n_partitions * ranks_per_image)
    lammps_args = [
        "-partition",
        f"{n_partitions}x{ranks_per_image}",
        "-in",
        input_name,
        "-log",
        "log.lammps",
        "-screen",
        "screen",
    ]
    if launcher == "mpirun":
        exe = shutil.which(lmp) or lmp
        return [mpirun, "-np", n_ranks, exe, *lammps_args]
    return [
        mpirun,
        "-np",
        n_ranks,
        sys.executable,
        "-m",
        "ionmd.neb.mpi_worker",
        *lammps_args,
    ]


def run_neb_partitions(
    workdir: Path,
    n_partitions: int,
    launcher: str = "mpirun",
    lmp: str = "lmp",
    mpirun: str = "mpirun",
    timeout_s: float | None = None,
    ranks_per_image: int = 1,
) -> None:
    """Run ``workdir/in.neb`` on ``n_partitions`` MPI partitions; raise with LAMMPS's error text."""
    cmd = neb_command(n_partitions, launcher, lmp, mpirun, ranks_per_image=ranks_per_image)
    if shutil.which(cmd[0]) is None:
        raise IonmdError(
            f"{cmd[0]} not found on PATH; it is needed to run an NEB on {n_partitions} partitions"
        )
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if launcher == "mpi4py":  # the worker ranks must import this very ionmd package
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise IonmdError(f"NEB in {workdir} exceeded {timeout_s} s: {' '.join(cmd)}") from exc
    errors = lammps_errors(workdir)
    if proc.returncode != 0 or errors:
        detail = "; ".join(errors[:3]) or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise IonmdError(f"LAMMPS NEB failed in {workdir} (exit {proc.returncode}): {detail}")
