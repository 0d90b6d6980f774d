"""Tracer diffusion coefficients with honest uncertainties.

D comes from a generalised least-squares fit of the all-origin MSD over a
diffusive window chosen automatically; the covariance of the MSD points is
modelled for Brownian motion (see :mod:`ionmd.analysis.gls`). Several
independent runs (seeds) at one temperature are combined by weighting each
with its own variance evaluated at the common D; when the runs scatter more
than their errors allow (reduced chi^2 > 1) the error is inflated by the
Birge ratio sqrt(chi^2_red).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ionmd.analysis.gls import brownian_msd_covariance, gls_line
from ionmd.analysis.msd import MSDCurve, collective_msd, tracer_msd
from ionmd.analysis.trajectory import Trajectory
from ionmd.errors import InputError

A2_PS_TO_CM2_S = 1e-4  # 1 Å^2/ps = 1e-16 cm^2 / 1e-12 s
Z95 = 1.959963984540054
E_CHARGE_C = 1.602176634e-19
KB_J_K = 1.380649e-23
KB_EV_K = 8.617333262e-5


@dataclass
class FitWindow:
    """Lags (frames) used in a fit and how they were chosen."""

    start: int
    end: int
    loglog_slope: float
    diffusive: bool


@dataclass
class DiffusionResult:
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

    def to_dict(self) -> dict:
        """Plain dict with NaN written as None (valid JSON)."""
        def clean(v):
            if isinstance(v, float) and not np.isfinite(v):
                return None
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v
        return {k: clean(v) for k, v in asdict(self).items()}

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text


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
    n = msd.n_frames
    end = max(3, int(end_frac * (n - 1)))
    start_min = max(1, int(min_start_frac * (n - 1)))
    y = msd.msd_A2

    def chord(a: int, b: int) -> float:
        if y[a] <= 0 or y[b] <= 0 or a == b:
            return float("nan")
        return float(np.log(y[b] / y[a]) / np.log(b / a))

    grid = np.unique(np.geomspace(start_min, end, 40).astype(int))
    start = next((int(g) for g in grid if g < end - 2 and chord(int(g), end) >= min_slope), None)
    diffusive = start is not None
    if start is None:
        start = max(start_min, end // 2)
    start = max(1, min(start, end - 2))
    return FitWindow(start, end, chord(start, end), bool(diffusive))


def window_from_ps(start_ps: float, end_ps: float, dt_ps: float, n_frames: int) -> FitWindow:
    """A user-chosen fit window, from times in ps to lags in frames.

    Raises
    ------
    InputError
        If the window is empty or outside the run.
    """
    start = int(round(start_ps / dt_ps))
    end = int(round(end_ps / dt_ps))
    if not (1 <= start < end - 1 and end <= n_frames - 2):
        raise InputError(
            f"fit window {start_ps:g}-{end_ps:g} ps is not inside the run: it needs "
            f"{dt_ps:g} <= start < end <= {(n_frames - 2) * dt_ps:g} ps with at least 3 frames"
        )
    return FitWindow(start, end, float("nan"), True)


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


def fit_slope(msd_A2: np.ndarray, n_frames: int, dt_ps: float, window: FitWindow,
              n_particles: int, n_dim: int = 3, max_points: int = 40,
              kurtosis_A4: float = 0.0) -> tuple[float, float, float]:
    """GLS fit of an MSD curve over ``window``: (slope length^2/ps, its standard error, intercept).

    The covariance is modelled for independent steps with the diffusion coefficient of
    the estimate and the excess fourth moment ``kurtosis_A4`` (0: Brownian motion).
    """
    lags = fit_lags(window, max_points)
    t = lags * dt_ps
    y = msd_A2[lags]
    slope, icpt = (float(v) for v in np.polyfit(t, y, 1))
    if not np.any(y > 0) or slope == 0.0:
        return slope, 0.0, icpt  # ions that do not move: D = 0 exactly
    for _ in range(3 if kurtosis_A4 > 0 else 1):
        # with K = 0 the covariance shape does not depend on D and one pass is exact
        s2 = max(abs(slope), 1e-300) / n_dim * dt_ps  # per-axis one-frame variance = 2 D dt
        cov = brownian_msd_covariance(lags, n_frames, s2, n_dim=n_dim, n_particles=n_particles,
                                      kurtosis_A4=kurtosis_A4)
        p, pcov = gls_line(t, y, cov)
        slope = float(p[0])
    s2 = max(abs(slope), 1e-300) / n_dim * dt_ps
    cov = brownian_msd_covariance(lags, n_frames, s2, n_dim=n_dim, n_particles=n_particles,
                                  kurtosis_A4=kurtosis_A4)
    p, pcov = gls_line(t, y, cov)
    return float(p[0]), float(np.sqrt(pcov[0, 0])), float(p[1])


def ci95(value: float, err: float) -> list[float | None]:
    """95% interval of a value whose standard error is proportional to its true value.

    Under the Brownian covariance model err = r D with a known relative error r, so
    (D_hat - D) / (r D) is the normal pivot and the interval is
    [D_hat / (1 + z r), D_hat / (1 - z r)] (upper end None, i.e. unbounded, when z r >= 1).
    It is asymmetric and covers the truth better than D_hat ± z err when r is not small.
    """
    if value == 0 or not np.isfinite(err):
        return [value - Z95 * err, value + Z95 * err]
    r = abs(err / value)
    lo = value / (1.0 + Z95 * r)
    hi = value / (1.0 - Z95 * r) if Z95 * r < 1.0 else None
    return [lo, hi] if value > 0 else [hi, lo]


def diffusion_from_trajectory(traj: Trajectory, species: str, window: FitWindow | None = None,
                              **window_kw) -> tuple[DiffusionResult, MSDCurve]:
    """Tracer D of one run; returns the result and the MSD curve (for plots)."""
    msd = tracer_msd(traj.positions_A, traj.dt_ps)
    if window is None:
        window = choose_window(msd, **window_kw)
    K = excess_kurtosis(traj.positions_A, window)
    res = diffusion_from_msd(msd, species, window, kurtosis_A4=K)
    res.run_length_ps = float(traj.time_ps[-1])
    res.sources = [traj.source]
    return res, msd


def diffusion_from_msd(msd: MSDCurve, species: str, window: FitWindow | None = None,
                       kurtosis_A4: float = 0.0, **window_kw) -> DiffusionResult:
    """Tracer D (cm^2/s) with its uncertainty from an all-origin MSD curve.

    ``kurtosis_A4`` is the excess fourth moment of the steps (see :func:`excess_kurtosis`);
    0 treats the motion as Gaussian.
    """
    dt_ps = float(msd.time_ps[1])
    if window is None:
        window = choose_window(msd, **window_kw)
    elif not np.isfinite(window.loglog_slope):
        y = msd.msd_A2
        if y[window.start] > 0 and y[window.end] > 0:
            window.loglog_slope = float(np.log(y[window.end] / y[window.start]) / np.log(window.end / window.start))
    slope, err, icpt = fit_slope(msd.msd_A2, msd.n_frames, dt_ps, window, msd.n_particles,
                                 kurtosis_A4=kurtosis_A4)
    D = slope / 6.0 * A2_PS_TO_CM2_S
    D_err = err / 6.0 * A2_PS_TO_CM2_S
    axis = []
    for k in range(3):
        sk, _, _ = fit_slope(msd.msd_axis_A2[:, k], msd.n_frames, dt_ps, window, msd.n_particles, n_dim=1)
        axis.append(sk / 2.0 * A2_PS_TO_CM2_S)
    return DiffusionResult(
        species=species,
        D_cm2_s=D,
        D_err_cm2_s=D_err,
        D_ci95_cm2_s=ci95(D, D_err),
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
    )


def combine_runs(results: list[DiffusionResult]) -> DiffusionResult:
    """Combine independent runs (seeds) of one species at one temperature into one estimate.

    Each run's variance scales as D^2 under the Brownian covariance model, so the
    weights use each run's relative error at the common D (an inverse-variance
    weighted mean that is not biased towards runs that happen to give a small D).
    The error is inflated by the Birge ratio when the runs disagree (chi^2_red > 1).
    """
    if not results:
        raise InputError("no runs to combine")
    if len(results) == 1:
        return results[0]
    D = np.array([r.D_cm2_s for r in results])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.array([r.D_err_cm2_s for r in results]) / np.abs(D)
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
        err = float(np.std(D, ddof=1) / np.sqrt(len(D)))
        chi2_red = None
    axis = np.mean([r.D_axis_cm2_s for r in results], axis=0).tolist()
    first = results[0]
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
    )
    sig = [r for r in results if r.sigma_mS_cm is not None and r.sigma_err_mS_cm]
    if sig:
        s = np.array([r.sigma_mS_cm for r in sig])
        se = np.array([r.sigma_err_mS_cm for r in sig])
        srel = se / np.maximum(np.abs(s), 1e-300)
        w = 1.0 / srel**2
        sm = float(np.sum(w * s) / np.sum(w))
        out.sigma_mS_cm = sm
        out.sigma_err_mS_cm = float(np.sqrt(1.0 / np.sum(1.0 / (srel * sm) ** 2)))
        # the Nernst-Einstein conductivity is proportional to D: rescale to the combined D
        ne_per_D = [r.sigma_NE_mS_cm / r.D_cm2_s for r in sig if r.D_cm2_s]
        out.sigma_NE_mS_cm = float(np.mean(ne_per_D) * Dm) if ne_per_D else 0.0
        _haven(out)
    return out


def _haven(res: DiffusionResult) -> None:
    if res.sigma_mS_cm and res.sigma_NE_mS_cm is not None and res.sigma_mS_cm > 0:
        res.haven_ratio = res.sigma_NE_mS_cm / res.sigma_mS_cm
        rel = np.hypot(res.D_err_cm2_s / abs(res.D_cm2_s), (res.sigma_err_mS_cm or 0) / res.sigma_mS_cm)
        res.haven_ratio_err = float(abs(res.haven_ratio) * rel)


def add_conductivity(res: DiffusionResult, traj: Trajectory, charges: dict[str, float], T_K: float,
                     window: FitWindow | None = None) -> MSDCurve:
    """Add the collective (charge) conductivity, Nernst-Einstein conductivity and Haven ratio.

    sigma = lim <|sum_i q_i e dr_i|^2> / (6 t V k_B T) from the charge MSD of the
    selected ions; sigma_NE = n q^2 e^2 D / (V k_B T) from the tracer D; the
    Haven ratio is sigma_NE / sigma.

    Returns the collective MSD curve, in (e Å)^2.
    """
    try:
        q = np.array([charges[s] for s in traj.symbols])
    except KeyError as exc:
        raise InputError(f"no charge given for species {exc}; pass e.g. --charges Li=1,F=-1") from None
    if T_K is None or T_K <= 0:
        raise InputError("the conductivity needs the temperature: pass --temperature-K")
    cmsd = collective_msd(traj.positions_A, traj.dt_ps, q)
    if window is None:
        n = traj.n_frames
        dtp = traj.dt_ps
        s, e = (int(round(x / dtp)) for x in res.fit_window_ps)
        window = FitWindow(max(1, s), min(e, n - 2), res.loglog_slope, res.diffusive)
    slope, err, _ = fit_slope(cmsd.msd_A2, cmsd.n_frames, traj.dt_ps, window, 1)
    V_m3 = float(np.mean(traj.volume_A3)) * 1e-30
    factor = E_CHARGE_C**2 * 1e-20 / 1e-12 / (V_m3 * KB_J_K * T_K) * 10.0  # (eÅ)^2/ps -> mS/cm
    res.T_K = float(T_K)
    res.sigma_mS_cm = slope / 6.0 * factor
    res.sigma_err_mS_cm = err / 6.0 * factor
    D_A2_ps = res.D_cm2_s / A2_PS_TO_CM2_S
    res.sigma_NE_mS_cm = float(np.sum(q**2) * D_A2_ps * factor)
    _haven(res)
    return cmsd
