"""The stages of ``ionmd study`` (see :mod:`ionmd.study.pipeline`), each usable alone.

Nothing here computes physics: structures come from :mod:`ionmd.driver.structure`,
MD from the sweep driver, numbers from :mod:`ionmd.analysis`, barriers from
:mod:`ionmd.neb`. Each stage has its module; this one re-exports their public names:

| module | stage |
|---|---|
| :mod:`ionmd.study.cell_stage` | ``structure``: the supercell and its defect (:class:`CellInfo`) |
| :mod:`ionmd.study.md_stage` | ``fit`` and ``md``: the study's own models, the sweep, the time estimate |
| :mod:`ionmd.study.analysis_stage` | ``analysis``: D(T), σ, hop classes, with the ``[sites]`` options |
| :mod:`ionmd.study.neb_stage` | ``neb``: a band per hop class, knock-offs, reference barriers |
| :mod:`ionmd.study.report_stage` | ``report``: the summary, the tables, the flags, ``study.json`` |
"""

from __future__ import annotations

from ionmd.study.analysis_stage import (
    FRENKEL_TRANSIENT,
    StudyAnalysis,
    analyse,
    flag_transient_interstitials,
    hop_classes_of,
    interstitials_sustained,
    site_options,
    transit_fractions,
    unit_to_cell_frac,
)
from ionmd.study.cell_stage import CellInfo, build_cell, defect_specs, fit_structure
from ionmd.study.md_stage import (
    PRIOR_FIT_S,
    PRIOR_NEB_S,
    PRIOR_RUN_OVERHEAD_S,
    PRIOR_US_PER_ATOM_STEP_CLASSICAL,
    PRIOR_US_PER_ATOM_STEP_TORCH,
    fit_models,
    fit_records,
    model_cost_prior,
    run_md,
    stage_priors_s,
    sweep_toml,
)
from ionmd.study.neb_stage import (
    JOB_RECORD,
    ReferenceBarriers,
    classes_in_cell,
    hop_mechanism,
    knockoff_jobs,
    load_reference_barriers,
    neb_job_record,
    path_slug,
    run_hop_nebs,
    study_potential,
    study_references,
)
from ionmd.study.report_stage import (
    UNITS,
    collect_flags,
    embed_images,
    hop_barrier_table,
    mechanism_shares,
    model_facts,
    sites_line,
    sites_record,
    study_costs,
    study_summary,
    summary_columns,
    summary_table,
    training_text,
    write_study_report,
)

__all__ = [
    "FRENKEL_TRANSIENT", "JOB_RECORD", "PRIOR_FIT_S", "PRIOR_NEB_S", "PRIOR_RUN_OVERHEAD_S",
    "PRIOR_US_PER_ATOM_STEP_CLASSICAL", "PRIOR_US_PER_ATOM_STEP_TORCH", "UNITS", "CellInfo",
    "ReferenceBarriers", "StudyAnalysis", "analyse", "build_cell", "classes_in_cell", "collect_flags",
    "defect_specs", "embed_images", "fit_models", "fit_records", "fit_structure",
    "flag_transient_interstitials", "hop_barrier_table", "hop_classes_of", "hop_mechanism",
    "interstitials_sustained", "knockoff_jobs", "load_reference_barriers", "mechanism_shares",
    "model_cost_prior", "model_facts", "neb_job_record", "path_slug", "run_hop_nebs", "run_md",
    "site_options", "sites_line", "sites_record", "stage_priors_s", "study_costs", "study_potential",
    "study_references", "study_summary", "summary_columns", "summary_table", "sweep_toml",
    "training_text", "transit_fractions", "unit_to_cell_frac", "write_study_report",
]
