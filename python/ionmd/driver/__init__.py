"""ionmd.driver: structures, LAMMPS inputs and resumable parameter sweeps.

Modules
-------
structure
    Rock-salt LiF or ASE-readable structures with point defects, written as LAMMPS
    data files carrying their type map (``ionmd structure``).
potential
    A model (TorchScript file or classical pair style) as ``pair_style``/``pair_coeff`` lines.
lammps_input
    Commented MD inputs from ``inputs/templates/md.lammps.in`` (``ionmd input md``).
sweep_config
    ``SWEEP.toml`` reading, validation and the Cartesian product of runs.
runner
    One LAMMPS run as a child process; restart files, dumps and error texts.
sweepdir
    The sweep directory's state files: ``RunRecord``, ``status.json`` and the
    ``sweep.json``/``sweep.csv`` index (one typed reader and writer).
sweep
    Rank-0 queue over MPI groups, resume, run locks and signals (``ionmd sweep``).
slurm
    Batch scripts for clusters (``ionmd sweep --slurm``).
"""
