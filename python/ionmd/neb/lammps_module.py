"""Import the ``lammps`` Python module the safe way: mpi4py's MPI first (it provides libmpi)."""

from __future__ import annotations

import importlib
from types import ModuleType


def lammps_module() -> ModuleType:
    """Return the ``lammps`` module, importing ``mpi4py.MPI`` before it."""
    importlib.import_module("mpi4py.MPI")
    return importlib.import_module("lammps")
