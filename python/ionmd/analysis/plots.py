"""PNG plots with units, error bars and the fit in the legend (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ionmd.analysis.arrhenius import KB_EV_K, ArrheniusResult
from ionmd.analysis.diffusion import A2_PS_TO_CM2_S, DiffusionResult
from ionmd.analysis.msd import MSDCurve


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (the one way ionmd plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, dpi: int = 120) -> Path:
    """Lay out ``fig``, write it to ``path`` as a PNG, close it and return the path."""
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path



def plot_msd(curves: list[tuple[MSDCurve, DiffusionResult]], path: str | Path, title: str = "") -> Path:
    """MSD against time for each run, with the fit window shaded and the fitted line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for k, (msd, res) in enumerate(curves):
        color = f"C{k % 10}"
        ax.plot(msd.time_ps, msd.msd_A2, color=color, lw=1.2,
                label=f"{res.species} {Path(res.sources[0]).parent.name or Path(res.sources[0]).name}")
        t0, t1 = res.fit_window_ps
        tt = np.linspace(t0, t1, 20)
        slope = 6.0 * res.D_cm2_s / A2_PS_TO_CM2_S
        if res.resolved:
            text = f"fit: D = {res.D_cm2_s:.3g} ± {res.D_err_cm2_s:.2g} cm²/s"
        else:
            text = f"fit: D not resolved, < {res.D_ci95_cm2_s[1]:.2g} cm²/s (95%)"
        if res.flags:
            text += "\nflags: " + ", ".join(res.flags)
        ax.plot(tt, slope * tt + res.fit_intercept_A2, "--", color=color, lw=1.5, label=text)
        if k == 0:
            ax.axvspan(t0, t1, color="0.9", zorder=0, label="fit window")
    ax.set_xlabel("time lag t (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.set_title(title or "Tracer mean squared displacement")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_arrhenius(fits: list[ArrheniusResult], path: str | Path, ylabel: str = "D (cm²/s)",
                   title: str = "Arrhenius plot") -> Path:
    """log D against 1000/T with error bars and the fitted line; Ea ± 95% CI in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for k, fit in enumerate(fits):
        color = f"C{k % 10}"
        T = np.array(fit.T_K)
        ax.errorbar(1000.0 / T, fit.D_cm2_s, yerr=fit.D_err_cm2_s, fmt="o", color=color, capsize=3,
                    label=f"{fit.label or 'data'}")
        Tl = np.linspace(T.min() * 0.95, T.max() * 1.05, 50)
        lo, hi = fit.Ea_ci95_eV
        text = f"fit: Ea = {fit.Ea_eV:.3f} eV (95% CI {lo:.3f}–{hi:.3f})"
        if fit.flags:
            text += "\nflags: " + ", ".join(fit.flags)
        ax.plot(1000.0 / Tl, fit.predict(Tl), "-", color=color, label=text)
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    secx = ax.secondary_xaxis("top", functions=(lambda x: 1000.0 / np.maximum(x, 1e-9),
                                                lambda T: 1000.0 / np.maximum(T, 1e-9)))
    secx.set_xlabel("T (K)")
    return save_png(fig, path)


def plot_hops(counts: dict[str, dict[str, int]], path: str | Path,
              title: str = "Hops per mechanism") -> Path:
    """Grouped bar chart of event counts per mechanism (outer key: e.g. temperature label)."""
    plt = pyplot()
    labels = list(counts)
    mechs = sorted({m for c in counts.values() for m in c})
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(mechs))
    for k, lab in enumerate(labels):
        n = np.array([counts[lab].get(m, 0) for m in mechs], dtype=float)
        ax.bar(x + k * width, n, width, yerr=np.sqrt(n), capsize=3, label=lab)
    ax.set_xticks(x + width * (len(labels) - 1) / 2)
    ax.set_xticklabels([m.replace("_", "\n") for m in mechs], fontsize=8)
    ax.set_ylabel("events (count, ±√N)")
    ax.set_title(title)
    if labels:
        ax.legend(fontsize=8)
    return save_png(fig, path)


__all__ = ["plot_msd", "plot_arrhenius", "plot_hops", "pyplot", "save_png", "KB_EV_K"]
