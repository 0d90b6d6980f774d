"""``ionmd study``: one material from a structure and a model to D(T), σ, Ea, hops and barriers.

Modules: :mod:`.config` (the ``STUDY.toml`` schema), :mod:`.pipeline` (the stage order,
resume and :func:`ionmd.study.pipeline.run_study`), :mod:`.stages` (each stage, usable
alone), :mod:`.fit_stage` (a model fitted by the study itself), :mod:`.md` (launching a
sweep over MPI and watching it), :mod:`.cost` (µs/atom/step from LAMMPS logs) and
:mod:`.progress` (stage progress and time left on stderr). The command lines are
:mod:`.cli` (``ionmd study``) and :mod:`ionmd.demo` (``ionmd demo``: a bundled study).
"""
