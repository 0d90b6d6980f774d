"""Tracer diffusion coefficients with honest uncertainties.

D comes from a generalised least-squares fit of the all-origin MSD over a
diffusive window chosen automatically; the covariance of the MSD points is
modelled for Brownian motion (see :mod:`ionmd.analysis.gls`). Several
independent runs (seeds) at one temperature are combined by weighting each
with its own variance evaluated at the common D; when the runs scatter more
than their errors allow (reduced chi^2 > 1) the error is inflated by the
Birge ratio sqrt(chi^2_red).

Honest at the edges: the GLS error is checked against the scatter of the
per-ion slopes (the GLS slope is linear in the MSD, so the slope of the
mean curve is the mean of per-ion slopes); the larger of the two is used,
which keeps the interval honest when few ions hop or vibrations dominate.
D >= 0 is physics: an interval that would reach 0 is reported as
"not resolved" with a 95% upper bound, ``[0, upper]``. Every result carries
machine-readable ``flags`` (see :data:`FLAG_DOCS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ionmd.analysis.gls import brownian_msd_covariance, gls_line, gls_weights
from ionmd.analysis.msd import MSDCurve, collective_msd, per_particle_msd, tracer_msd
from ionmd.analysis.trajectory import Trajectory
from ionmd.errors import InputError
from ionmd.results import Result

A2_PS_TO_CM2_S = 1e-4  # 1 Å^2/ps = 1e-16 cm^2 / 1e-12 s
Z95 = 1.959963984540054
E_CHARGE_C = 1.602176634e-19
KB_J_K = 1.380649e-23
KB_EV_K = 8.617333262e-5
MIN_SLOPE = 0.85  # log-log MSD slope below which a window is not diffusive
MIN_HOPS = 20  # fewer estimated hops (all ions) than this: flag "too-few-hops"

FLAG_DOCS = {
    "not-diffusive": "the log-log MSD slope of the fit window is outside [0.85, 1/0.85]",
    "window-sensitive": "D of the neighbouring windows differs from the chosen one beyond the stated error",
    "too-few-hops": f"fewer than {MIN_HOPS} hops (estimated from the step statistics) enter the fit",
    "not-resolved": "the 95% interval of D reaches 0: D is reported as an upper bound",
    "axis-x-not-resolved": "the 95% interval of D along x reaches 0 (likewise y, z)",
    "sigma-not-resolved": "the 95% interval of the conductivity reaches 0: an upper bound only",
    "haven-ratio-undefined": "no Haven ratio: see haven_ratio_reason",
}


def _chord_slope(y: np.ndarray, a: int, b: int) -> float:
    if y[a] <= 0 or y[b] <= 0 or a == b:
        return float("nan")
    return float(np.log(y[b] / y[a]) / np.log(b / a))


def is_diffusive_slope(slope: float, min_slope: float = MIN_SLOPE) -> bool:
    """Whether a log-log MSD slope is close enough to 1 (diffusive, neither caged nor ballistic)."""
    return bool(np.isfinite(slope) and min_slope <= slope <= 1.0 / min_slope)


@dataclass
class FitWindow:
    """Lags (frames) used in a fit and how they were chosen."""

    start: int
    end: int
    loglog_slope: float
    diffusive: bool


@dataclass
class DiffusionResult(Result):
    """Diffusion coefficient of one species from one or more runs at one temperature.

    JSON keys are stable (see docs/analysis.md). D values in cm^2/s, times in ps.
    """

    species: str
    D_cm2_s: float
    D_err_cm2_s: float
    D_ci95_cm2_s: list[float | None]
    fit_window_ps: list[float]
    n_frames: int
    n_ions: int
    n_runs: int = 1
    D_axis_cm2_s: list[float] = field(default_factory=list)
    method: str = "gls-modelled-covariance"
    loglog_slope: float = float("nan")
    diffusive: bool = True
    chi2_red_runs: float | None = None
    fit_intercept_A2: float = 0.0
    kurtosis_A4: float = 0.0
    dt_frame_ps: float = float("nan")
    run_length_ps: float = float("nan")
    T_K: float | None = None
    sigma_mS_cm: float | None = None
    sigma_err_mS_cm: float | None = None
    sigma_NE_mS_cm: float | None = None
    haven_ratio: float | None = None
    haven_ratio_err: float | None = None
    runs_D_cm2_s: list[float] = field(default_factory=list)
    runs_D_err_cm2_s: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    resolved: bool = True
    D_upper95_cm2_s: float | None = None
    D_err_model_cm2_s: float = float("nan")
    D_err_ions_cm2_s: float = float("nan")
    D_axis_err_cm2_s: list[float] = field(default_factory=list)
    D_axis_ci95_cm2_s: list[list[float]] = field(default_factory=list)
    window_neighbours_D_cm2_s: list[float] = field(default_factory=list)
    n_hops_est: float | None = None
    sigma_ci95_mS_cm: list[float] | None = None
    haven_ratio_ci95: list[float | None] | None = None
    haven_ratio_reason: str | None = None
    ion_heterogeneity: float | None = None

    def add_flag(self, flag: str) -> None:
        """Add a machine-readable flag once."""
        if flag not in self.flags:
            self.flags.append(flag)


def choose_window(msd: MSDCurve, min_start_frac: float = 0.05, end_frac: float = 0.5,
                  min_slope: float = 0.85) -> FitWindow:
    """Pick the diffusive window of an MSD curve.

    The end is ``end_frac`` of the run (longer lags have few independent origins).
    The start is the first lag at or after ``min_start_frac`` of the run from which
    the log-log chord slope ln(MSD(end)/MSD(start)) / ln(end/start) reaches
    ``min_slope``: past the ballistic and vibrational regimes, where MSD = 6 D t
    dominates any plateau. The chord over the whole remaining window is far less
    noisy than a local derivative. If no lag qualifies, the second half of the
    allowed range is used and ``diffusive`` is False.
    """
    check_fractions(min_start_frac, end_frac)
    n = msd.n_frames
    end = min(n - 1, max(3, int(end_frac * (n - 1))))
    start_min = max(1, int(min_start_frac * (n - 1)))
    if end - start_min < 2:
        raise InputError(
            f"the fit window from --min-start-frac {min_start_frac:g} to --end-frac {end_frac:g} of a "
            f"{n}-frame run spans lags {start_min}-{end}: fewer than 3 frames; widen it"
        )
    y = msd.msd_A2

    def chord(a: int, b: int) -> float:
        return _chord_slope(y, a, b)

    grid = np.unique(np.geomspace(start_min, end, 40).astype(int))
    start = next((int(g) for g in grid if g < end - 2 and chord(int(g), end) >= min_slope), None)
    diffusive = start is not None
    if start is None:
        start = max(start_min, end // 2)
    start = max(1, min(start, end - 2))
    slope = chord(start, end)
    return FitWindow(start, end, slope, bool(diffusive and is_diffusive_slope(slope, min_slope)))


def check_fractions(min_start_frac: float, end_frac: float) -> None:
    """Validate the window fractions (``--min-start-frac``, ``--end-frac``).

    Raises
    ------
    InputError
        Naming the option and value when a fraction is not finite, outside (0, 1], or the start
        is not before the end.
    """
    for name, v in (("--min-start-frac", min_start_frac), ("--end-frac", end_frac)):
        if not (isinstance(v, (int, float)) and math.isfinite(v)) or not (0.0 <= v <= 1.0):
            raise InputError(f"{name} {v} is not a fraction of the run between 0 and 1")
    if end_frac <= 0:
        raise InputError(f"--end-frac {end_frac} must be above 0")
    if min_start_frac >= end_frac:
        raise InputError(
            f"--min-start-frac {min_start_frac:g} is not below --end-frac {end_frac:g}: the fit window "
            "would be empty"
        )


def window_from_ps(start_ps: float, end_ps: float, dt_ps: float, n_frames: int,
                   msd: MSDCurve | None = None, min_slope: float = MIN_SLOPE) -> FitWindow:
    """A user-chosen fit window, from times in ps to lags in frames.

    The log-log slope test applies to it as to the automatic window: with ``msd`` given,
    ``diffusive`` is False when the chord slope is outside [min_slope, 1/min_slope]
    (without it the test runs when the fit is made).

    Raises
    ------
    InputError
        If a time is not finite, or the window is empty or outside the run (its end may be the
        last frame).
    """
    if not (math.isfinite(start_ps) and math.isfinite(end_ps)):
        raise InputError(f"--fit-window-ps {start_ps:g} {end_ps:g}: the times must be finite numbers")
    start = int(round(start_ps / dt_ps))
    end = int(round(end_ps / dt_ps))
    if not (1 <= start < end - 1 and end <= n_frames - 1):
        raise InputError(
            f"fit window {start_ps:g}-{end_ps:g} ps is not inside the run: it needs "
            f"{dt_ps:g} <= start < end <= {(n_frames - 1) * dt_ps:g} ps with at least 3 frames"
        )
    if msd is None:
        return FitWindow(start, end, float("nan"), True)
    slope = _chord_slope(msd.msd_A2, start, end)
    return FitWindow(start, end, slope, is_diffusive_slope(slope, min_slope))


def fit_lags(window: FitWindow, max_points: int = 40) -> np.ndarray:
    """Lags (frames) at which the MSD enters the fit: evenly spaced over the window."""
    return np.unique(np.linspace(window.start, window.end, max_points).round().astype(int))


def excess_kurtosis(positions_A: np.ndarray, window: FitWindow, n_lags: int = 5,
                    max_samples: int = 2_000_000) -> float:
    """Excess fourth-moment term K (Å^4 per frame) of the steps, from <|dr|^4> in the fit window.

    K = (<|dr|^4> - (5/3) MSD^2) / lag for 3-D displacements over ``lag`` frames, the median
    over ``n_lags`` lags from the window start to twice that (the shortest diffusive lags:
    the estimate is a difference of large numbers and degrades at long lags), clipped at 0
    (Gaussian). Origins are subsampled so that at most ``max_samples`` displacements enter
    each lag.
    """
    n, n_ions, n_dim = positions_A.shape
    lags = np.unique(np.geomspace(window.start, min(2 * window.start, window.end), n_lags).round().astype(int))
    ks = []
    for a in lags:
        n_orig = n - a
        stride = max(1, int(np.ceil(n_orig * n_ions / max_samples)))
        d = positions_A[a::stride][: len(range(0, n_orig, stride))] - positions_A[0:n_orig:stride]
        r2 = np.einsum("tid,tid->ti", d, d)
        m2 = float(r2.mean())
        m4 = float((r2 * r2).mean())
        ks.append((m4 - (1.0 + 2.0 / n_dim) * m2 * m2) / a)
    return max(0.0, float(np.median(ks))) if ks else 0.0


def _gls_fit(msd_A2: np.ndarray, n_frames: int, dt_ps: float, window: FitWindow, n_particles: int,
             n_dim: int = 3, max_points: int = 40, kurtosis_A4: float = 0.0,
             ions: IonScale | None = None):
    """GLS fit; returns (slope, slope error, intercept, lags, slope weights g with slope = g @ y).

    ``ions`` (see :func:`ion_scale`) sets the scale of the Gaussian covariance term when the ions
    differ: max(|slope|, chord slope) x sqrt(heterogeneity) instead of |slope|.
    """
    lags = fit_lags(window, max_points)
    t = lags * dt_ps
    y = msd_A2[lags]
    slope, icpt = (float(v) for v in np.polyfit(t, y, 1))
    if not np.any(y > 0) or slope == 0.0:
        g = np.linalg.pinv(np.column_stack([t, np.ones_like(t)]))[0]
        return slope, 0.0, icpt, lags, g  # ions that do not move: D = 0 exactly

    def one_step_s2(s: float) -> float:  # per-axis one-frame variance = 2 D dt
        scale = abs(s) if ions is None else max(abs(s), ions.chord_A2_ps) * np.sqrt(ions.heterogeneity)
        return max(scale, 1e-300) / n_dim * dt_ps

    for _ in range(3 if kurtosis_A4 > 0 or ions is not None else 1):
        # with K = 0 the covariance shape does not depend on D and one pass is exact
        cov = brownian_msd_covariance(lags, n_frames, one_step_s2(slope), n_dim=n_dim, n_particles=n_particles,
                                      kurtosis_A4=kurtosis_A4)
        p, pcov = gls_line(t, y, cov)
        slope = float(p[0])
    s2 = one_step_s2(slope)
    cov = brownian_msd_covariance(lags, n_frames, s2, n_dim=n_dim, n_particles=n_particles,
                                  kurtosis_A4=kurtosis_A4)
    p, pcov = gls_line(t, y, cov)
    return float(p[0]), float(np.sqrt(pcov[0, 0])), float(p[1]), lags, gls_weights(t, cov)[0]


@dataclass
class IonScale:
    """How far the ions differ: the mean chord slope and the heterogeneity of the per-ion slopes."""

    chord_A2_ps: float
    heterogeneity: float


def ion_scale(positions_A: np.ndarray, window: FitWindow, dt_ps: float,
              max_samples: int = 2_000_000) -> IonScale | None:
    """Scale of the covariance model when ions differ (one interstitial among many, a few movers).

    The covariance of the mean MSD is (1/N^2) sum_i Cov_i, and its Gaussian part grows with
    sum_i D_i^2, not N D^2: one mover among N has N times the error of N equal movers. Per ion,
    the chord slope c_i = (MSD_i(a) - MSD_i(a0)) / ((a - a0) dt) over the shortest diffusive lags
    (a the window start, a0 = a / 4) estimates 6 D_i; its own sampling noise is removed by the
    method of moments, E[c_i^2] = C_i^2 (1 + alpha) + beta K_i (alpha, beta from the covariance
    model of the two lags, K_i the ion's excess fourth moment), so that equal ions with few hops
    are not counted as unequal. Returns the mean chord (a floor for the covariance scale: a
    walker whose MSD levels off inside the window still carries the error of its hops) and the
    heterogeneity h = mean(C_i^2) / mean(c_i)^2 >= 1 (1: equal ions; N: one mover), or None when
    the window starts at lag 1 or the ions do not move.
    """
    a = int(window.start)
    a0 = max(1, a // 4)
    n, n_ions, _ = positions_A.shape
    if a - a0 < 1 or n_ions < 2:
        return None
    lags = np.array([a0, a])
    pm = per_particle_msd(positions_A, lags).sum(axis=2)
    c = (pm[:, 1] - pm[:, 0]) / ((a - a0) * dt_ps)
    cbar = float(np.mean(c))
    if not cbar > 0:
        return None
    stride = max(1, int(np.ceil((n - a0) * n_ions / max_samples)))
    d = positions_A[a0::stride][: len(range(0, n - a0, stride))] - positions_A[0 : n - a0 : stride]
    r2 = np.einsum("tid,tid->ti", d, d)
    m2 = r2.mean(axis=0)
    K = max(0.0, float(np.mean((r2 * r2).mean(axis=0) - (5.0 / 3.0) * m2 * m2)) / a0)
    quad = brownian_msd_covariance(lags, n, 1.0, n_dim=3, n_particles=1)
    lin = brownian_msd_covariance(lags, n, 0.0, n_dim=3, n_particles=1, kurtosis_A4=1.0)
    u = np.array([-1.0, 1.0]) / ((a - a0) * dt_ps)
    alpha = float(u @ quad @ u) * (dt_ps / 3.0) ** 2
    beta = float(u @ lin @ u)
    S2 = max(cbar**2, (float(np.mean(c * c)) - beta * K) / (1.0 + alpha))
    return IonScale(cbar, S2 / cbar**2)


def fit_slope(msd_A2: np.ndarray, n_frames: int, dt_ps: float, window: FitWindow,
              n_particles: int, n_dim: int = 3, max_points: int = 40,
              kurtosis_A4: float = 0.0) -> tuple[float, float, float]:
    """GLS fit of an MSD curve over ``window``: (slope length^2/ps, its standard error, intercept).

    The covariance is modelled for independent steps with the diffusion coefficient of
    the estimate and the excess fourth moment ``kurtosis_A4`` (0: Brownian motion).
    """
    slope, err, icpt, _, _ = _gls_fit(msd_A2, n_frames, dt_ps, window, n_particles, n_dim, max_points,
                                      kurtosis_A4)
    return slope, err, icpt


def ci95(value: float, err: float, quantile: float = Z95) -> list[float]:
    """95% interval of a non-negative quantity (D, sigma) from its estimate and standard error.

    When ``value - q err > 0`` the quantity is resolved and the interval is
    ``[v / (1 + q r), v / (1 - q r)]`` with r = err / v: under the covariance model the
    error is proportional to the true value, so (v - D) / (r D) is the normal pivot; the
    interval is asymmetric and covers better than v ± q err when r is not small. Otherwise
    (the interval would reach 0, or the estimate is not positive) the result is
    ``[0, max(v, 0) + q err]``: a one-sided statement, never a claim of a negative value.
    ``quantile`` is q (1.96, or Student's t when the error is estimated from few ions).
    """
    if not (np.isfinite(value) and np.isfinite(err)):
        return [float("nan"), float("nan")]
    if value - quantile * err > 0:
        r = err / value
        return [value / (1.0 + quantile * r), value / (1.0 - quantile * r)]
    return [0.0, max(value, 0.0) + quantile * err]


def is_resolved(value: float, err: float, quantile: float = Z95) -> bool:
    """Whether the 95% interval of a non-negative quantity stays clear of 0 (see :func:`ci95`)."""
    return bool(np.isfinite(value) and np.isfinite(err) and value - quantile * err > 0)


def _ion_slope_error(per_ion: np.ndarray, g: np.ndarray) -> tuple[float, int]:
    """Standard error of the mean slope from the per-ion slopes (g @ y_i), and the ion count."""
    n_ions = per_ion.shape[0]
    if n_ions < 2:
        return float("nan"), n_ions
    slopes = per_ion @ g
    return float(np.std(slopes, ddof=1) / np.sqrt(n_ions)), n_ions


def _choose_error(err_model: float, err_ions: float, n_ions: int) -> tuple[float, float]:
    """The error used and its 95% quantile.

    The between-ion error replaces the modelled one when the ions scatter more than the model
    allows (a one-sided chi^2 test at 90% on the n_ions - 1 degrees of freedom of the scatter):
    few ions hop, ions differ, or vibrations dominate. Its quantile is then Student's t.
    """
    if not np.isfinite(err_ions) or n_ions < 2:
        return err_model, Z95
    dof = n_ions - 1
    if err_ions**2 > err_model**2 * stats.chi2.ppf(0.90, dof) / dof:
        return err_ions, float(stats.t.ppf(0.975, dof))
    return err_model, Z95


def estimated_hops(slope_A2_ps: float, dt_ps: float, kurtosis_A4: float, n_ions: int,
                   n_frames: int) -> float | None:
    """Number of hops in the run implied by the step statistics, or None for Gaussian steps.

    For jumps of any length l at rate q per frame, MSD per frame m = q l^2 and the excess
    fourth moment K = q l^4 (1 - 5q/3), so q = m^2 / K hops per ion and frame.
    """
    if kurtosis_A4 <= 0 or slope_A2_ps <= 0:
        return None
    m = slope_A2_ps * dt_ps
    return float(n_ions * (n_frames - 1) * m * m / kurtosis_A4)


def _window_neighbours(window: FitWindow, n_frames: int) -> list[FitWindow]:
    """Windows of the same length shifted by half a length earlier and later (inside the run)."""
    half = max(1, (window.end - window.start) // 2)
    out = []
    for shift in (-half, half):
        a, b = window.start + shift, window.end + shift
        if a >= 1 and b <= n_frames - 1 and b - a >= 2:
            out.append(FitWindow(a, b, float("nan"), window.diffusive))
    return out


def diffusion_from_trajectory(traj: Trajectory, species: str, window: FitWindow | None = None,
                              **window_kw) -> tuple[DiffusionResult, MSDCurve]:
    """Tracer D of one run; returns the result and the MSD curve (for plots)."""
    msd = tracer_msd(traj.positions_A, traj.dt_ps)
    if window is None:
        window = choose_window(msd, **window_kw)
    K = excess_kurtosis(traj.positions_A, window)
    res = diffusion_from_msd(msd, species, window, kurtosis_A4=K, positions_A=traj.positions_A)
    res.run_length_ps = float(traj.time_ps[-1])
    res.sources = [traj.source]
    return res, msd


def diffusion_from_msd(msd: MSDCurve, species: str, window: FitWindow | None = None,
                       kurtosis_A4: float = 0.0, positions_A: np.ndarray | None = None,
                       **window_kw) -> DiffusionResult:
    """Tracer D (cm^2/s) with its uncertainty and flags from an all-origin MSD curve.

    Parameters
    ----------
    kurtosis_A4 : float
        Excess fourth moment of the steps (see :func:`excess_kurtosis`); 0 treats the motion
        as Gaussian.
    positions_A : ndarray (n_frames, n_ions, 3), optional
        The positions behind ``msd``: the scatter of the per-ion slopes then bounds the error
        from below (few hopping ions, vibrations, unequal ions).
    """
    dt_ps = float(msd.time_ps[1])
    if window is None:
        window = choose_window(msd, **window_kw)
    elif not np.isfinite(window.loglog_slope):
        window.loglog_slope = _chord_slope(msd.msd_A2, window.start, window.end)
        window.diffusive = window.diffusive and is_diffusive_slope(window.loglog_slope)
    ions = ion_scale(positions_A, window, dt_ps) if positions_A is not None else None
    slope, err_model, icpt, lags, g = _gls_fit(msd.msd_A2, msd.n_frames, dt_ps, window, msd.n_particles,
                                               kurtosis_A4=kurtosis_A4, ions=ions)
    per_ion = per_particle_msd(positions_A, lags) if positions_A is not None else None
    err_ions, n_ions = (_ion_slope_error(per_ion.sum(axis=2), g) if per_ion is not None
                        else (float("nan"), msd.n_particles))
    err, q = _choose_error(err_model, err_ions, n_ions)
    f = A2_PS_TO_CM2_S / 6.0
    D, D_err = slope * f, err * f
    axis, axis_err, axis_ci = [], [], []
    for k in range(3):
        sk, ek, _, _, gk = _gls_fit(msd.msd_axis_A2[:, k], msd.n_frames, dt_ps, window, msd.n_particles,
                                    n_dim=1)
        ei = _ion_slope_error(per_ion[:, :, k], gk)[0] if per_ion is not None else float("nan")
        ek, qk = _choose_error(ek, ei, n_ions)
        fk = A2_PS_TO_CM2_S / 2.0
        axis.append(sk * fk)
        axis_err.append(ek * fk)
        axis_ci.append(ci95(sk * fk, ek * fk, qk))
    res = DiffusionResult(
        species=species,
        D_cm2_s=D,
        D_err_cm2_s=D_err,
        D_ci95_cm2_s=ci95(D, D_err, q),
        fit_window_ps=[window.start * dt_ps, window.end * dt_ps],
        n_frames=msd.n_frames,
        n_ions=msd.n_particles,
        D_axis_cm2_s=axis,
        loglog_slope=window.loglog_slope,
        diffusive=window.diffusive,
        fit_intercept_A2=icpt,
        kurtosis_A4=kurtosis_A4,
        dt_frame_ps=dt_ps,
        run_length_ps=float(msd.time_ps[-1]),
        runs_D_cm2_s=[D],
        runs_D_err_cm2_s=[D_err],
        D_err_model_cm2_s=err_model * f,
        D_err_ions_cm2_s=err_ions * f,
        D_axis_err_cm2_s=axis_err,
        D_axis_ci95_cm2_s=axis_ci,
        n_hops_est=estimated_hops(slope, dt_ps, kurtosis_A4, msd.n_particles, msd.n_frames),
        ion_heterogeneity=ions.heterogeneity if ions is not None else None,
    )
    if not res.diffusive:
        res.add_flag("not-diffusive")
    if res.n_hops_est is not None and res.n_hops_est < MIN_HOPS:
        res.add_flag("too-few-hops")
    for nb in _window_neighbours(window, msd.n_frames):
        s_nb, e_nb, _, _, _ = _gls_fit(msd.msd_A2, msd.n_frames, dt_ps, nb, msd.n_particles,
                                       kurtosis_A4=kurtosis_A4, ions=ions)
        res.window_neighbours_D_cm2_s.append(s_nb * f)
        if abs(s_nb - slope) > 2.0 * np.hypot(err, e_nb):
            res.add_flag("window-sensitive")
    _resolution_flags(res, q)
    return res


def _resolution_flags(res: DiffusionResult, quantile: float = Z95) -> None:
    """Set ``resolved``, ``D_upper95_cm2_s`` and the not-resolved flags from the intervals."""
    res.resolved = is_resolved(res.D_cm2_s, res.D_err_cm2_s, quantile)
    res.flags = [x for x in res.flags if not x.endswith("not-resolved") or x.startswith("sigma")]
    if not res.resolved:
        res.add_flag("not-resolved")
        res.D_upper95_cm2_s = res.D_ci95_cm2_s[1]
    else:
        res.D_upper95_cm2_s = None
    for ax, ci in zip("xyz", res.D_axis_ci95_cm2_s, strict=False):
        if ci and ci[0] == 0.0:
            res.add_flag(f"axis-{ax}-not-resolved")


def combine_runs(results: list[DiffusionResult]) -> DiffusionResult:
    """Combine independent runs (seeds) of one species at one temperature into one estimate.

    Each run's variance scales as D^2 under the Brownian covariance model, so the
    weights use each run's relative error at the common D (an inverse-variance
    weighted mean that is not biased towards runs that happen to give a small D).
    The error is inflated by the Birge ratio when the runs disagree (chi^2_red > 1).
    Runs that are not resolved (D <= 0 or no usable error) make it a plain mean with its
    standard error. The flags of the runs carry over; the resolution is decided anew.
    """
    if not results:
        raise InputError("no runs to combine")
    if len(results) == 1:
        return results[0]
    D = np.array([r.D_cm2_s for r in results])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.array([r.D_err_cm2_s for r in results]) / D
    if np.all(np.isfinite(rel) & (rel > 0)):
        w_rel = 1.0 / rel**2
        Dm = float(np.sum(w_rel * D) / np.sum(w_rel))
        var = (rel * abs(Dm)) ** 2
        err = float(np.sqrt(1.0 / np.sum(1.0 / var)))
        chi2_red = float(np.sum((D - Dm) ** 2 / var) / (len(D) - 1))
        if chi2_red > 1.0:
            err *= np.sqrt(chi2_red)
    else:  # a run without a usable error (e.g. ions that never move): plain mean and its standard error
        Dm = float(np.mean(D))
        err_runs = np.array([r.D_err_cm2_s for r in results])
        err = float(max(np.std(D, ddof=1) / np.sqrt(len(D)),
                        np.sqrt(np.sum(np.nan_to_num(err_runs) ** 2)) / len(D)))
        chi2_red = None
    axis = np.mean([r.D_axis_cm2_s for r in results], axis=0).tolist()
    axis_err = (np.sqrt(np.sum(np.array([r.D_axis_err_cm2_s for r in results]) ** 2, axis=0))
                / len(results)).tolist() if all(r.D_axis_err_cm2_s for r in results) else []
    first = results[0]
    flags: list[str] = []
    for r in results:
        flags += [x for x in r.flags if x not in flags and "not-resolved" not in x]
    hops = [r.n_hops_est for r in results]
    out = DiffusionResult(
        species=first.species,
        D_cm2_s=Dm,
        D_err_cm2_s=err,
        D_ci95_cm2_s=ci95(Dm, err),
        fit_window_ps=[min(r.fit_window_ps[0] for r in results), max(r.fit_window_ps[1] for r in results)],
        n_frames=int(sum(r.n_frames for r in results)),
        n_ions=first.n_ions,
        n_runs=len(results),
        D_axis_cm2_s=axis,
        method=first.method + "+runs",
        loglog_slope=float(np.mean([r.loglog_slope for r in results])),
        diffusive=all(r.diffusive for r in results),
        chi2_red_runs=chi2_red,
        dt_frame_ps=first.dt_frame_ps,
        run_length_ps=float(sum(r.run_length_ps for r in results)),
        T_K=first.T_K,
        runs_D_cm2_s=[float(x) for x in D],
        runs_D_err_cm2_s=[r.D_err_cm2_s for r in results],
        sources=[s for r in results for s in r.sources],
        flags=flags,
        D_axis_err_cm2_s=axis_err,
        D_axis_ci95_cm2_s=[ci95(v, e) for v, e in zip(axis, axis_err, strict=True)] if axis_err else [],
        n_hops_est=float(sum(hops)) if all(h is not None for h in hops) else None,
    )
    if out.n_hops_est is not None and out.n_hops_est >= MIN_HOPS and "too-few-hops" in out.flags:
        out.flags.remove("too-few-hops")  # enough hops in all the runs together
    _resolution_flags(out)
    sig = [r for r in results if r.sigma_mS_cm is not None and r.sigma_err_mS_cm]
    if sig:
        s = np.array([r.sigma_mS_cm for r in sig])
        se = np.array([r.sigma_err_mS_cm for r in sig])
        srel = se / np.maximum(np.abs(s), 1e-300)
        if np.all(s > 0):
            w = 1.0 / srel**2
            sm = float(np.sum(w * s) / np.sum(w))
            serr = float(np.sqrt(1.0 / np.sum(1.0 / (srel * sm) ** 2)))
        else:
            sm = float(np.mean(s))
            serr = float(np.sqrt(np.sum(se**2)) / len(s))
        out.sigma_mS_cm = sm
        out.sigma_err_mS_cm = serr
        # the Nernst-Einstein conductivity is proportional to D: rescale to the combined D
        ne_per_D = [r.sigma_NE_mS_cm / r.D_cm2_s for r in sig if r.D_cm2_s]
        out.sigma_NE_mS_cm = float(np.mean(ne_per_D) * Dm) if ne_per_D else 0.0
        _sigma_and_haven(out)
    return out


def _sigma_and_haven(res: DiffusionResult) -> None:
    """Interval of sigma, and the Haven ratio with an interval, or the reason it has none."""
    res.flags = [x for x in res.flags if x not in ("sigma-not-resolved", "haven-ratio-undefined")]
    res.haven_ratio = res.haven_ratio_err = res.haven_ratio_ci95 = None
    res.haven_ratio_reason = None
    s, se, ne = res.sigma_mS_cm, res.sigma_err_mS_cm or 0.0, res.sigma_NE_mS_cm
    if s is None:
        return
    res.sigma_ci95_mS_cm = ci95(s, se)
    sigma_ok = is_resolved(s, se)
    if not sigma_ok:
        res.add_flag("sigma-not-resolved")
    if ne is None:
        reason = "no Nernst-Einstein conductivity"
    elif not sigma_ok:
        up = res.sigma_ci95_mS_cm[1]
        reason = (f"the conductivity is not resolved (95% interval 0 .. {up:.3g} mS/cm): "
                  "the Haven ratio is only bounded from below")
        if ne > 0 and up > 0:
            lo_ne = ne * (res.D_ci95_cm2_s[0] / res.D_cm2_s) if res.resolved else 0.0
            res.haven_ratio_ci95 = [lo_ne / up, None]
    elif not res.resolved:
        reason = "the tracer D is not resolved, so neither is the Nernst-Einstein conductivity"
        res.haven_ratio_ci95 = [0.0, res.D_ci95_cm2_s[1] / res.D_cm2_s * ne / res.sigma_ci95_mS_cm[0]
                                if res.D_cm2_s > 0 else None]
    else:
        res.haven_ratio = ne / s
        rel = float(np.hypot(res.D_err_cm2_s / res.D_cm2_s, se / s))
        res.haven_ratio_err = float(res.haven_ratio * rel)
        res.haven_ratio_ci95 = [res.haven_ratio * float(np.exp(-Z95 * rel)),
                                res.haven_ratio * float(np.exp(Z95 * rel))]
        return
    res.haven_ratio_reason = reason
    res.add_flag("haven-ratio-undefined")


def add_conductivity(res: DiffusionResult, traj: Trajectory, charges: dict[str, float], T_K: float,
                     window: FitWindow | None = None) -> MSDCurve:
    """Add the collective (charge) conductivity, Nernst-Einstein conductivity and Haven ratio.

    sigma = lim <|sum_i q_i e dr_i|^2> / (6 t V k_B T) from the charge MSD of the
    selected ions; sigma_NE = n q^2 e^2 D / (V k_B T) from the tracer D; the
    Haven ratio is sigma_NE / sigma, with a log-normal 95% interval, or None with
    ``haven_ratio_reason`` when sigma or D is not resolved.

    Returns the collective MSD curve, in (e Å)^2.
    """
    try:
        q = np.array([charges[s] for s in traj.symbols])
    except KeyError as exc:
        raise InputError(f"no charge given for species {exc}; pass e.g. --charges Li=1,F=-1") from None
    if T_K is None or not math.isfinite(T_K) or T_K <= 0:
        raise InputError(f"the conductivity needs a positive temperature: pass --temperature-K (got {T_K})")
    cmsd = collective_msd(traj.positions_A, traj.dt_ps, q)
    if window is None:
        n = traj.n_frames
        dtp = traj.dt_ps
        s, e = (int(round(x / dtp)) for x in res.fit_window_ps)
        window = FitWindow(max(1, s), min(e, n - 1), res.loglog_slope, res.diffusive)
    slope, err, _ = fit_slope(cmsd.msd_A2, cmsd.n_frames, traj.dt_ps, window, 1)
    V_m3 = float(np.mean(traj.volume_A3)) * 1e-30
    factor = E_CHARGE_C**2 * 1e-20 / 1e-12 / (V_m3 * KB_J_K * T_K) * 10.0  # (eÅ)^2/ps -> mS/cm
    res.T_K = float(T_K)
    res.sigma_mS_cm = slope / 6.0 * factor
    res.sigma_err_mS_cm = err / 6.0 * factor
    D_A2_ps = res.D_cm2_s / A2_PS_TO_CM2_S
    res.sigma_NE_mS_cm = float(np.sum(q**2) * D_A2_ps * factor)
    _sigma_and_haven(res)
    return cmsd
