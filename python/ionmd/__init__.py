"""ionmd: from machine-learning interatomic potentials to ionic transport numbers.

The package has two halves:

* ``pair_style mlip/torch``, a LAMMPS plugin (compiled C++) that runs TorchScript
  MACE and DeePMD-kit models, installed inside this package (see :mod:`ionmd.plugin`);
* a Python driver: structures, LAMMPS inputs, parameter sweeps, and the analysis
  of trajectories into diffusivities, conductivities and activation energies.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
