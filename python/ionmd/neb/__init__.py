"""Migration barriers by the nudged elastic band (NEB) method.

The pieces, one job per module:

- :mod:`ionmd.neb.structures`: end-point checks and minimum-image distances;
- :mod:`ionmd.neb.potential`: a model (TorchScript file or raw pair lines) as LAMMPS lines;
- :mod:`ionmd.neb.relax`: fixed-cell relaxation of an end point with LAMMPS ``minimize``;
- :mod:`ionmd.neb.interpolate`: linear or IDPP images (ASE);
- :mod:`ionmd.neb.lammps_input`: data files and the ``in.neb`` script;
- :mod:`ionmd.neb.runner`: ``mpirun -np N lmp -partition Nx1`` (or mpi4py) launch;
- :mod:`ionmd.neb.parse`: reading the NEB table out of ``log.lammps``;
- :mod:`ionmd.neb.result`: the :class:`NEBResult` dataclass, JSON and PNG profile;
- :mod:`ionmd.neb.workflow`: the whole chain for any two end points;
- :mod:`ionmd.neb.hops`: end points of a hop of any structure, symmetry-distinct hop
  types (spglib) and one climbing-image NEB per type;
- :mod:`ionmd.neb.sweep_match`: NEB results matched to a sweep's models for ``ionmd report``.

Nothing here is material-specific. The built-in LiF hops (``ionmd neb --case``) and their
CHGNet reference live in the LiF example, :mod:`ionmd.examples.lif`.
"""

from __future__ import annotations
