"""ionmd.analysis: from LAMMPS dumps to diffusivities, conductivities, activation energies and mechanisms.

Modules (each with one job; see docs/analysis.md):

- :mod:`~ionmd.analysis.trajectory` keeps the selected ions' unwrapped positions from LAMMPS
  dumps (read by :mod:`ionmd.lammpsio.dump`) or extxyz / ASE trajectories; data files and type
  maps are read by :mod:`ionmd.lammpsio.datafile`.
- :mod:`~ionmd.analysis.msd` computes all-origin MSDs by FFT; :mod:`~ionmd.analysis.gls` models their
  covariance; :mod:`~ionmd.analysis.diffusion` gives ``DiffusionResult`` (D, error, window,
  conductivity, Haven ratio) and combines seeds.
- :mod:`~ionmd.analysis.arrhenius` fits ``ArrheniusResult``; :mod:`~ionmd.analysis.sweep` reads sweep
  directories.
- :mod:`~ionmd.analysis.sites` and :mod:`~ionmd.analysis.mechanism` find sites and classify hops.
- :mod:`~ionmd.analysis.plots` and :mod:`~ionmd.analysis.report` write PNGs and reports;
  :mod:`~ionmd.analysis.synthetic` makes test data with known answers.

This package imports nothing heavy at import time, so the CLI starts fast.
"""
