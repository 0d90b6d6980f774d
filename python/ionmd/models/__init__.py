"""Model tools: label frames, fit MACE/DeePMD models, manage the DeePMD env.

Modules: :mod:`~ionmd.models.calculators` (labeller specs), :mod:`~ionmd.models.label`
(``ionmd label``), :mod:`~ionmd.models.fit` (``ionmd fit``), :mod:`~ionmd.models.dpenv`
(``ionmd env deepmd``), :mod:`~ionmd.models.deepmd_data` (deepmd/npy writer),
:mod:`~ionmd.models.sampling` (``ionmd sample``: training frames for any structure),
:mod:`~ionmd.models.bundle` (``models.json`` entries of bundled models). ``ionmd export`` lives in :mod:`~ionmd.models.export`.
"""
