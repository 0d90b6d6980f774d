"""The demo report's three PNGs: Arrhenius (tracer D and jump rate), MSD, NEB profiles.

They draw results of ``ionmd.analysis`` and ``ionmd.neb``; nothing is fitted here
except the straight line 6 D t + c of each combined D, which is drawn from the
analysis result. Units are on every axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ionmd.analysis.arrhenius import ArrheniusResult
from ionmd.analysis.diffusion import A2_PS_TO_CM2_S
from ionmd.analysis.plots import pyplot as _plt
from ionmd.analysis.plots import save_png
from ionmd.analysis.sweep import SweepAnalysis
from ionmd.study.neb import NEBOutcome, ReferenceBarrier
from ionmd.study.plan import CASE_LABELS, MODEL_LABELS, NEB_CASES


def _save(fig, path: Path) -> Path:
    return save_png(fig, path, dpi=110)


def plot_arrhenius_models(sw: SweepAnalysis | None, path: Path, md_cell: str,
                          hop_fits: dict[str, ArrheniusResult] | None = None) -> Path:
    """Arrhenius plots for every model: the tracer D (left) and the interstitial's jump rate.

    Each panel has the points with their error bars and the fitted line with its Ea.
    """
    plt = _plt()
    fig, (ax, ax_hop) = plt.subplots(1, 2, figsize=(11.0, 4.4))
    drawn = False
    for k, (model, by_T) in enumerate((sw.diffusion if sw else {}).items()):
        color = f"C{k}"
        T = np.array(sorted(by_T))
        D = np.array([by_T[t].D_cm2_s for t in T])
        err = np.array([by_T[t].D_err_cm2_s for t in T])
        ok = D > 0
        if ok.any():
            ax.errorbar(1000.0 / T[ok], D[ok], yerr=np.minimum(err[ok], 0.999 * D[ok]), fmt="o",
                        color=color, capsize=3, label=f"{MODEL_LABELS.get(model, model)}: D(T)")
            drawn = True
        fit = sw.arrhenius.get(model) if sw else None
        if fit is not None:
            _fit_line(ax, fit, T, color)
    _finish_arrhenius(ax, drawn, "no positive D to plot", "Li tracer D (cm²/s)",
                      f"Tracer D, LiF + Li interstitial, {md_cell}")
    drawn = False
    for k, (model, fit) in enumerate((hop_fits or {}).items()):
        T = np.asarray(fit.T_K)
        rate, err = np.asarray(fit.D_cm2_s), np.asarray(fit.D_err_cm2_s)
        ax_hop.errorbar(1000.0 / T, rate, yerr=np.minimum(err, 0.999 * rate), fmt="s",
                        color=f"C{k}", capsize=3,
                        label=f"{MODEL_LABELS.get(model, model)}: jump rate (Poisson errors)")
        _fit_line(ax_hop, fit, T, f"C{k}")
        drawn = True
    _finish_arrhenius(ax_hop, drawn, "no hops at two or more temperatures",
                      "interstitial jumps per ps (knock-off + direct)",
                      f"Interstitial jump rate, {md_cell}")
    return _save(fig, path)


def _fit_line(ax, fit: ArrheniusResult, T: np.ndarray, color: str) -> None:
    Tl = np.linspace(T.min() * 0.97, T.max() * 1.03, 50)
    lo, hi = fit.Ea_ci95_eV
    ax.plot(1000.0 / Tl, fit.predict(Tl), "-", color=color,
            label=f"fit: Ea = {fit.Ea_eV:.3f} eV (95% CI {lo:.3f} to {hi:.3f})")


def _finish_arrhenius(ax, drawn: bool, empty_text: str, ylabel: str, title: str) -> None:
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)


def plot_msd_models(sw: SweepAnalysis | None, path: Path) -> Path:
    """Li MSD against lag time: one panel per model, one colour per temperature.

    Thin lines are the seeds; the dashed line is the combined D's 6 D t + c over the
    fit window (c: mean intercept of the seeds).
    """
    plt = _plt()
    models = list(sw.msd) if sw else []
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(5.2 * max(1, len(models)), 4.2),
                             squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        by_T = sw.msd[model]
        for k, T in enumerate(sorted(by_T)):
            color = f"C{k}"
            for msd, _ in by_T[T]:
                ax.plot(msd.time_ps, msd.msd_A2, color=color, lw=0.9, alpha=0.7)
            comb = sw.diffusion[model][T]
            t0, t1 = comb.fit_window_ps
            tt = np.linspace(t0, t1, 10)
            c = float(np.mean([r.fit_intercept_A2 for _, r in by_T[T]]))
            ax.plot(tt, 6.0 * comb.D_cm2_s / A2_PS_TO_CM2_S * tt + c, "--", color=color, lw=1.6,
                    label=f"{T:g} K: D = {comb.D_cm2_s:.2g} ± {comb.D_err_cm2_s:.1g} cm²/s")
        ax.set_xlabel("lag time (ps)")
        ax.set_ylabel("Li MSD (Å²)")
        ax.set_title(f"{MODEL_LABELS.get(model, model)}: seeds (thin), fit (dashed)", fontsize=9)
        ax.legend(fontsize=7)
    if not models:
        axes[0][0].text(0.5, 0.5, "no MD run could be analysed", ha="center", va="center")
    return _save(fig, path)


def plot_neb_profiles(outcomes: list[NEBOutcome], reference: dict[str, ReferenceBarrier],
                      path: Path) -> Path:
    """Energy along the path for each hop (one panel per case), every model, CHGNet's barrier."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(NEB_CASES), figsize=(5.0 * len(NEB_CASES), 3.9),
                             squeeze=False)
    models = list(dict.fromkeys(o.model for o in outcomes))
    for ax, case in zip(axes[0], NEB_CASES, strict=True):
        for k, model in enumerate(models):
            o = next((x for x in outcomes if x.model == model and x.case == case), None)
            if o is None or o.result is None:
                continue
            r = o.result
            state = (f"{r.barrier_forward_eV:.3f} eV" if r.converged
                     else f"not converged, F = {r.max_force_eV_A:.2g} eV/Å")
            ax.plot(r.reaction_coordinate, r.energies_eV, "o-" if r.converged else "x:",
                    color=f"C{k}", label=f"{MODEL_LABELS.get(model, model)}: {state} "
                                         f"({r.n_atoms} atoms)")
        ref = reference.get(case)
        if ref is not None and ref.barrier_eV is not None:
            ax.axhline(ref.barrier_eV, color="k", ls="--", lw=1,
                       label=f"CHGNet barrier {ref.barrier_eV:.3f} eV ({ref.n_atoms} atoms)")
        ax.set_xlabel("reaction coordinate (fraction of path)")
        ax.set_ylabel("energy relative to initial (eV)")
        ax.set_title(CASE_LABELS[case], fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, path)
