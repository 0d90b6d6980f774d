"""Stage 3 of the demo: diffusion, Arrhenius, mechanisms and cost, via ``ionmd.analysis``.

Nothing is computed here that the analysis library computes: D per run with GLS
uncertainties, seeds combined and Arrhenius fits come from
:func:`ionmd.analysis.sweep.analyse_sweep`, hop mechanisms from
:func:`ionmd.analysis.report.sweep_mechanisms`, and the Arrhenius fit of the
interstitial's jump rate from :func:`ionmd.analysis.report.defect_hop_arrhenius`.
This module only gathers them per model, adds the knock-off fraction and the cost
from the LAMMPS logs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ionmd.analysis.arrhenius import ArrheniusResult
from ionmd.analysis.mechanism import MechanismResult
from ionmd.analysis.report import defect_hop_arrhenius, sweep_mechanisms
from ionmd.analysis.sweep import SweepAnalysis, analyse_sweep
from ionmd.driver.sweepdir import read_index
from ionmd.errors import InputError
from ionmd.study.cost import ModelCost, model_cost

KNOCKOFF = "interstitialcy"
DIRECT = "direct_interstitial"


@dataclass
class HopCounts:
    """Interstitial hop events of one model, summed over temperatures and seeds."""

    knockoff: int
    direct: int
    other: int
    duration_ps: float

    @property
    def knockoff_fraction(self) -> float | None:
        """Knock-off events / (knock-off + direct interstitial events); None without hops."""
        n = self.knockoff + self.direct
        return self.knockoff / n if n else None


@dataclass
class DemoAnalysis:
    """Everything the report needs from the MD."""

    sweep: SweepAnalysis | None
    mechanisms: dict[str, dict[float, MechanismResult]] = field(default_factory=dict)
    hops: dict[str, HopCounts] = field(default_factory=dict)
    hop_arrhenius: dict[str, ArrheniusResult] = field(default_factory=dict)
    costs: dict[str, ModelCost] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def hop_counts(by_T: dict[float, MechanismResult]) -> HopCounts:
    """Sum the mechanism counts of one model over temperatures."""
    k = sum(r.counts.get(KNOCKOFF, 0) for r in by_T.values())
    d = sum(r.counts.get(DIRECT, 0) for r in by_T.values())
    total = sum(sum(r.counts.values()) for r in by_T.values())
    return HopCounts(k, d, total - k - d, sum(r.duration_ps for r in by_T.values()))


def analyse_demo(sweep_dir: Path) -> DemoAnalysis:
    """Analyse the demo's sweep directory (every ``done`` run)."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sw: SweepAnalysis | None = analyse_sweep(sweep_dir, species=["Li"])
        except InputError as exc:
            sw = None
            notes.append(f"diffusion analysis: {exc}")
        try:
            mech, mech_notes = sweep_mechanisms(sweep_dir, ["Li"], None)
        except InputError as exc:
            mech, mech_notes = {}, [f"mechanism analysis: {exc}"]
    notes += [str(w.message) for w in caught] + mech_notes
    if sw is not None:
        notes += [f"not analysed: {s}" for s in sw.skipped]
    out = DemoAnalysis(sweep=sw, mechanisms=mech, notes=list(dict.fromkeys(notes)))
    out.hops = {m: hop_counts(by_T) for m, by_T in mech.items()}
    for m, by_T in mech.items():
        fit = defect_hop_arrhenius(by_T, m)
        if fit is not None:
            out.hop_arrhenius[m] = fit
    index = read_index(sweep_dir)
    by_model: dict[str, list[Path]] = {}
    for run in index.with_status("done"):
        by_model.setdefault(run.model, []).append(index.run_dir(run))
    out.costs = {m: model_cost(dirs) for m, dirs in by_model.items()}
    return out
