"""Resumable parameter sweeps: temperatures x models x seeds (x structures) over MPI.

The sweep is split by job; this module keeps their public names in one place:

* :mod:`ionmd.driver.sweep_state`: the sweep directory's state (prepare or reopen a
  sweep, the runs to do, from which restart file a run continues, the summary);
  the files themselves are read and written by :mod:`ionmd.driver.sweepdir`;
* :mod:`ionmd.driver.run_lifecycle`: one run (lock, inputs, restart probe, the real
  LAMMPS as a child process, the recorded outcome) and :func:`run_loop`, the one
  loop that runs runs;
* :mod:`ionmd.driver.mpi_dispatch`: :func:`run_sweep`, which hands the runs to the
  MPI groups (or runs them serially without mpi4py), and the signal handling.

``mpirun -np P ionmd sweep SWEEP.toml --ranks-per-run R`` (or the script written by
``ionmd sweep --slurm``) calls :func:`run_sweep`; see ``docs/driver.md``.
"""

from __future__ import annotations

from ionmd.driver.mpi_dispatch import (
    POLL_S,
    TAG_ASSIGN,
    TAG_GROUP,
    TAG_REQUEST,
    exit_code_for_signal,
    flush_and_exit,
    linger_after_interrupt,
    run_sweep,
    world_rank,
)
from ionmd.driver.run_lifecycle import (
    RunSource,
    SweepInterrupted,
    finish_run,
    interrupt_run,
    run_loop,
    start_run,
)
from ionmd.driver.sweep_state import (
    SweepSummary,
    mark_interrupted,
    model_changed,
    model_hashes,
    prepare_sweep,
    resume_point,
    summarize,
)
from ionmd.driver.sweepdir import read_status, save_status

__all__ = [
    "POLL_S", "TAG_ASSIGN", "TAG_GROUP", "TAG_REQUEST", "RunSource", "SweepInterrupted",
    "SweepSummary", "exit_code_for_signal", "finish_run", "flush_and_exit", "interrupt_run",
    "linger_after_interrupt", "mark_interrupted", "model_changed", "model_hashes",
    "prepare_sweep", "read_status", "resume_point", "run_loop", "run_sweep", "save_status",
    "start_run", "summarize", "world_rank",
]
