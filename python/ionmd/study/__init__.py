"""The LiF Li-interstitial study behind ``ionmd demo``: MD sweep, NEB, analysis, report.

Modules: :mod:`.plan` (the budget of each mode, in one place), :mod:`.md` (cell and
MD sweep through ``ionmd.driver``), :mod:`.neb` (barriers through ``ionmd.neb``),
:mod:`.analysis` (diffusion, mechanisms and cost through ``ionmd.analysis``),
:mod:`.cost` (µs/atom/step from LAMMPS logs), :mod:`.figures`, :mod:`.report`,
:mod:`.progress` and :mod:`.run` (the whole chain, :func:`ionmd.study.run.run_demo`).
The command line is :mod:`ionmd.demo`.
"""
