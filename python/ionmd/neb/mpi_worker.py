"""mpi4py entry point: ``mpirun -np N python -m ionmd.neb.mpi_worker -partition Nx1 -in in.neb ...``.

Every rank creates a LAMMPS instance on ``MPI.COMM_WORLD`` with the given command
line arguments; LAMMPS splits the world into partitions and each reads the input.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the LAMMPS input named after ``-in`` in ``argv`` on all ranks of the world."""
    from mpi4py import MPI

    from ionmd.neb.lammps_module import lammps_module

    lammps = lammps_module()

    args = list(sys.argv[1:] if argv is None else argv)
    if "-in" not in args:
        print("mpi_worker: missing -in FILE", file=sys.stderr)
        return 2
    input_file = args[args.index("-in") + 1]
    # LAMMPS insists on -in with partitions; the library then reads it through file().
    lmp = lammps.lammps(cmdargs=args, comm=MPI.COMM_WORLD)
    lmp.file(input_file)
    lmp.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
