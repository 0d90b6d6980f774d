"""Migration barriers by the nudged elastic band (NEB) method.

The pieces, one job per module:

- :mod:`ionmd.neb.structures`: built-in LiF end points and end-point checks;
- :mod:`ionmd.neb.potential`: a model (TorchScript file or raw pair lines) as LAMMPS lines;
- :mod:`ionmd.neb.relax`: fixed-cell relaxation of an end point with LAMMPS ``minimize``;
- :mod:`ionmd.neb.interpolate`: linear or IDPP images (ASE);
- :mod:`ionmd.neb.lammps_input`: data files and the ``in.neb`` script;
- :mod:`ionmd.neb.runner`: ``mpirun -np N lmp -partition Nx1`` (or mpi4py) launch;
- :mod:`ionmd.neb.parse`: reading the NEB table out of ``log.lammps``;
- :mod:`ionmd.neb.result`: the :class:`NEBResult` dataclass, JSON and PNG profile;
- :mod:`ionmd.neb.workflow`: the whole chain for any two end points;
- :mod:`ionmd.neb.cases`: :func:`~ionmd.neb.cases.run_case`, a built-in LiF hop for a model
  file, resumable (the entry point for demos and ``ionmd neb --case``);
- :mod:`ionmd.neb.sweep_match`: NEB results matched to a sweep's models for ``ionmd report``.
"""

from __future__ import annotations
