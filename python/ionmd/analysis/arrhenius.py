"""Weighted Arrhenius fits: ln D = ln D0 - Ea / (k_B T).

Each point is weighted by its relative error (sigma_lnD = D_err / D). The
covariance of (ln D0, Ea) is the weighted least-squares one, scaled by the
reduced chi^2 when the points scatter more than their errors (Birge ratio),
and intervals use Student's t with n - 2 degrees of freedom in that case
(the normal quantile otherwise). D(300 K) and its interval follow from the
linear propagation of that covariance to ln D(300 K) (a Gaussian posterior
with flat priors), so the interval is asymmetric in D.

Flags (machine-readable, printed): ``from-flagged-points`` when an input point
carries flags (not diffusive, not resolved, ...), ``extrapolation-far`` when the
extrapolation temperature lies further outside the fitted range in 1/T than the
range's own width, ``two-temperatures`` when no scatter check is possible.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from ionmd.errors import InputError
from ionmd.results import Result

KB_EV_K = 8.617333262e-5


@dataclass
class ArrheniusResult(Result):
    """Arrhenius fit of D(T) (or of a rate). JSON keys are stable (docs/analysis.md)."""

    Ea_eV: float
    Ea_err_eV: float
    Ea_ci95_eV: list[float]
    D0_cm2_s: float
    D0_ci95_cm2_s: list[float]
    D300K_cm2_s: float
    D300K_ci95_cm2_s: list[float]
    n_temperatures: int
    chi2_red: float | None
    T_K: list[float] = field(default_factory=list)
    D_cm2_s: list[float] = field(default_factory=list)
    D_err_cm2_s: list[float] = field(default_factory=list)
    label: str = ""
    quantity: str = "D_cm2_s"
    flags: list[str] = field(default_factory=list)
    flagged_points_K: list[float] = field(default_factory=list)
    T_extrapolate_K: float = 300.0

    def predict(self, T_K: float | np.ndarray) -> np.ndarray:
        """Fitted value at temperature(s) T_K."""
        return self.D0_cm2_s * np.exp(-self.Ea_eV / (KB_EV_K * np.asarray(T_K, dtype=float)))


def fit_arrhenius(T_K, D, D_err, label: str = "", quantity: str = "D_cm2_s",
                  T_extrapolate_K: float = 300.0,
                  point_flags: list[list[str]] | None = None) -> ArrheniusResult:
    """Weighted fit of ln D against 1/T.

    Parameters
    ----------
    T_K, D, D_err : array-like
        Temperatures (K), values (e.g. cm^2/s) and their one-sigma errors (same unit).
    T_extrapolate_K : float
        Temperature of the extrapolated value (default 300 K).
    point_flags : list of list of str, optional
        Flags of each point (e.g. ``DiffusionResult.flags``); any flag makes the fit
        ``from-flagged-points``.

    Raises
    ------
    InputError
        Fewer than two distinct temperatures, or non-positive D / errors.
    """
    T = np.asarray(T_K, dtype=float)
    y = np.asarray(D, dtype=float)
    e = np.asarray(D_err, dtype=float)
    if not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise InputError(f"the temperatures must be positive finite numbers, got {T.tolist()} K")
    if not np.all(np.isfinite(y)):
        raise InputError(f"D is not a finite number at T = {T[~np.isfinite(y)].tolist()} K")
    if point_flags is not None and len(point_flags) != len(T):
        raise InputError(f"point_flags has {len(point_flags)} entries for {len(T)} points")
    if len(np.unique(T)) < 2:
        raise InputError(f"the Arrhenius fit needs at least two temperatures, got {sorted(set(T.tolist()))}")
    if np.any(y <= 0):
        bad = T[y <= 0]
        raise InputError(f"D must be positive for the Arrhenius fit; it is not at T = {bad.tolist()} K")
    if np.any(~np.isfinite(e)) or np.any(e <= 0):
        bad = T[~(np.isfinite(e) & (e > 0))]
        raise InputError(f"D_err must be positive at every temperature; it is not at T = {bad.tolist()} K")
    x = 1.0 / (KB_EV_K * T)  # 1/eV
    ly = np.log(y)
    s = e / y
    X = np.column_stack([np.ones_like(x), -x])  # params: ln D0, Ea
    W = 1.0 / s**2
    A = X.T @ (X * W[:, None])
    cov = np.linalg.inv(A)
    p = cov @ (X.T @ (W * ly))
    n = len(T)
    dof = n - 2
    chi2_red = float(np.sum(W * (ly - X @ p) ** 2) / dof) if dof > 0 else None
    q = stats.norm.ppf(0.975)
    if chi2_red is not None and chi2_red > 1.0:
        cov = cov * chi2_red
        q = stats.t.ppf(0.975, dof)
    lnD0, Ea = float(p[0]), float(p[1])
    Ea_err = float(np.sqrt(cov[1, 1]))
    lnD0_err = float(np.sqrt(cov[0, 0]))
    x3 = 1.0 / (KB_EV_K * T_extrapolate_K)
    g = np.array([1.0, -x3])
    ln3 = float(g @ p)
    ln3_err = float(np.sqrt(g @ cov @ g))
    flags, flagged = [], []
    if point_flags is not None:
        flagged = [float(t) for t, f in zip(T, point_flags, strict=True) if f]
        if flagged:
            flags.append("from-flagged-points")
    span = float(x.max() - x.min())
    dist = max(0.0, float(x.min() - x3), float(x3 - x.max()))
    if dist > span:
        flags.append("extrapolation-far")
    if len(np.unique(T)) < 3:
        flags.append("two-temperatures")
    return ArrheniusResult(
        Ea_eV=Ea,
        Ea_err_eV=Ea_err,
        Ea_ci95_eV=[Ea - q * Ea_err, Ea + q * Ea_err],
        D0_cm2_s=float(np.exp(lnD0)),
        D0_ci95_cm2_s=[float(np.exp(lnD0 - q * lnD0_err)), float(np.exp(lnD0 + q * lnD0_err))],
        D300K_cm2_s=float(np.exp(ln3)),
        D300K_ci95_cm2_s=[float(np.exp(ln3 - q * ln3_err)), float(np.exp(ln3 + q * ln3_err))],
        n_temperatures=int(len(np.unique(T))),
        chi2_red=chi2_red,
        T_K=T.tolist(),
        D_cm2_s=y.tolist(),
        D_err_cm2_s=e.tolist(),
        label=label,
        quantity=quantity,
        flags=flags,
        flagged_points_K=flagged,
        T_extrapolate_K=float(T_extrapolate_K),
    )


def read_arrhenius_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a CSV with the columns ``T_K,D_cm2_s,D_err_cm2_s``.

    Raises
    ------
    InputError
        Missing file or column, or a value that is not a number (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CSV file '{path}' does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        need = ("T_K", "D_cm2_s", "D_err_cm2_s")
        cols = reader.fieldnames or []
        for c in need:
            if c not in cols:
                raise InputError(f"CSV file '{path}' has no column '{c}' (it has {cols}); "
                                 "the columns must be T_K,D_cm2_s,D_err_cm2_s")
        rows = []
        for k, row in enumerate(reader, start=2):
            try:
                rows.append([float(row[c]) for c in need])
            except (TypeError, ValueError):
                raise InputError(f"CSV file '{path}' line {k}: values {[row.get(c) for c in need]} "
                                 "are not all numbers") from None
    if not rows:
        raise InputError(f"CSV file '{path}' has no data rows")
    a = np.array(rows)
    return a[:, 0], a[:, 1], a[:, 2]
