"""Evolutionary search of orderings on partially occupied sublattices (``ionmd order``).

:mod:`~ionmd.order.sublattice` reads the parent structure and the composition targets,
:mod:`~ionmd.order.symmetry` gives each ordering a symmetry-canonical key,
:mod:`~ionmd.order.search` runs the genetic algorithm and the random baseline,
:mod:`~ionmd.order.cache` remembers every evaluated candidate (resume),
:mod:`~ionmd.order.energy` turns a calculator specification into energies,
:mod:`~ionmd.order.workflow` writes the outputs, and :mod:`~ionmd.order.testing`
holds lattice models with exactly known ground states.
"""
