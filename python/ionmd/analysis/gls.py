"""Generalised least squares for MSD(t) = slope t + intercept with a modelled covariance.

MSD points at different lags share the same displacements, so they are
strongly correlated; ordinary least squares then understates the error of
the slope. Following the approach of kinisi (McCluskey et al.), the
covariance of the MSD points is modelled, here exactly for Brownian motion
sampled at the frames: per axis, increments xi_k ~ N(0, s^2) with
s^2 = 2 D dt, and the all-origin estimator at lag a is
Q_a = (1/n_a) sum_t W(t, a)^2 with n_a = N - a origins. Because the
increments are Gaussian,
    Cov(Q_a, Q_b) = 2 s^4 / (n_a n_b) * sum_d c_ab(d) o_ab(d)^2,
where o_ab(d) is the number of steps shared by windows [t, t+a) and
[t+d, t+d+b) and c_ab(d) counts the origin pairs with that offset. For the
total MSD averaged over n ions and 3 axes the covariance is 3 Cov / n.
The slope's variance is the GLS one, (X^T C^-1 X)^-1.

Ion hopping is far from Gaussian (rare, large jumps), which the Gaussian
model underestimates badly. For independent, identically distributed
vector steps of any distribution the exact covariance of |W_A|^2 and
|W_B|^2 is 2 n_dim s^4 |A and B|^2 + K |A and B|, with
K = Var(|xi|^2) - 2 n_dim s^4 the excess fourth moment of a step; K is
estimated from the measured <|dr|^4> at lags inside the fit window
(K = (<|dr|^4> - (1 + 2/n_dim) MSD^2) / lag), so it describes the steps on
the diffusive time scale rather than the vibrations.
"""

from __future__ import annotations

import numpy as np


def brownian_msd_covariance(lags: np.ndarray, n_frames: int, s2: float, n_dim: int = 3,
                            n_particles: int = 1, kurtosis_A4: float = 0.0) -> np.ndarray:
    """Covariance of all-origin MSD estimates (sum over ``n_dim`` axes, mean over particles).

    Parameters
    ----------
    lags : ndarray of int
        Lags in frames (>= 1).
    n_frames : int
        Frames in the trajectory.
    s2 : float
        Variance of a one-frame displacement along one axis (2 D dt), length^2.
    n_dim, n_particles : int
        Axes summed and independent particles averaged.
    kurtosis_A4 : float
        Excess fourth-moment term K = Var(|xi|^2) - 2 n_dim s^4 of a one-frame displacement
        (0 for Gaussian steps); adds K x (shared steps) to each covariance.
    """
    key = (tuple(int(x) for x in lags), int(n_frames))
    shapes = _SHAPE_CACHE.get(key)
    if shapes is None:
        shapes = _covariance_shape(np.asarray(lags, dtype=np.int64), int(n_frames))
        if len(_SHAPE_CACHE) > 64:
            _SHAPE_CACHE.clear()
        _SHAPE_CACHE[key] = shapes
    quad, lin = shapes
    return (quad * (s2 * s2 * n_dim) + lin * kurtosis_A4) / n_particles


_SHAPE_CACHE: dict = {}


def _covariance_shape(lags: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian part (per axis, s^2 = 1) and shared-step count part of the covariance, one particle."""
    k = len(lags)
    cov = np.zeros((k, k))
    lin = np.zeros((k, k))
    for i in range(k):
        a = lags[i]
        na = n_frames - a
        for j in range(i, k):
            b = lags[j]
            nb = n_frames - b
            d = np.arange(-(b - 1), a)  # offsets with non-zero overlap
            ov = np.minimum(a, d + b) - np.maximum(0, d)
            cnt = np.minimum(na - 1, nb - 1 - d) - np.maximum(0, -d) + 1
            cnt = np.clip(cnt, 0, None)
            ovf = ov.astype(float)
            cov[i, j] = cov[j, i] = 2.0 * float(np.sum(cnt * ovf**2)) / (na * nb)
            lin[i, j] = lin[j, i] = float(np.sum(cnt * ovf)) / (na * nb)
    return cov, lin


def gls_line(t: np.ndarray, y: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit y = slope t + intercept by GLS; return (params [slope, intercept], their covariance)."""
    X = np.column_stack([t, np.ones_like(t)])
    scale = float(np.mean(np.diag(cov)))
    c = cov / scale + 1e-9 * np.eye(len(t))
    L = np.linalg.cholesky(c)
    Xw = np.linalg.solve(L, X)
    yw = np.linalg.solve(L, y)
    A = Xw.T @ Xw
    p = np.linalg.solve(A, Xw.T @ yw)
    return p, np.linalg.inv(A) * scale


def gls_weights(t: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """The (2, k) matrix G of the GLS line fit: [slope, intercept] = G @ y for any y at ``t``.

    The GLS estimator is linear in the data, so the slope of the mean of several curves is
    the mean of their slopes (used for the between-particle error).
    """
    X = np.column_stack([t, np.ones_like(t)])
    scale = float(np.mean(np.diag(cov)))
    c = cov / scale + 1e-9 * np.eye(len(t))
    ci_x = np.linalg.solve(c, X)
    return np.linalg.solve(X.T @ ci_x, ci_x.T)


def ols_line(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ordinary least-squares [slope, intercept]."""
    return np.polyfit(t, y, 1)
