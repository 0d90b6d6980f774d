"""Mean squared displacements over every time origin, by FFT.

For one coordinate r(t), t = 0..N-1, the MSD at lag m averaged over all
N - m origins is S1(m) - 2 S2(m), where S2 is the autocorrelation of r
(computed by FFT in O(N log N)) and S1 comes from cumulative sums of r^2.
Both are linear in the per-ion sums, so ions are accumulated in chunks and
only one inverse FFT per axis is needed: memory is bounded by the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft


@dataclass
class MSDCurve:
    """An MSD curve with per-axis components.

    Attributes
    ----------
    time_ps : ndarray (n_lags,)
        Lag times, ps (lag 0 included).
    msd_axis_A2 : ndarray (n_lags, 3)
        MSD along x, y, z, Å^2, averaged over ions and origins.
    n_particles : int
        Number of ions averaged (1 for a collective MSD).
    n_frames : int
        Frames of the trajectory.
    """

    time_ps: np.ndarray
    msd_axis_A2: np.ndarray
    n_particles: int
    n_frames: int

    @property
    def msd_A2(self) -> np.ndarray:
        """Total MSD (sum over axes), Å^2."""
        return self.msd_axis_A2.sum(axis=1)


def msd_sums_fft(x: np.ndarray, chunk: int = 64, workers: int | None = None) -> np.ndarray:
    """Sum over particles of the all-origin MSD, per axis.

    Parameters
    ----------
    x : ndarray (n_frames, n_particles, n_dim)
        Unwrapped coordinates.
    chunk : int
        Particles transformed together (bounds memory to ~ 2 n_frames x chunk x n_dim complex).
    workers : int, optional
        Threads for scipy.fft.

    Returns
    -------
    ndarray (n_frames, n_dim)
        Sum over particles of MSD(lag), lag = 0..n_frames-1.
    """
    x = np.asarray(x, dtype=float)
    n, n_part, n_dim = x.shape
    nfft = scipy.fft.next_fast_len(2 * n, real=True)
    power = np.zeros((nfft // 2 + 1, n_dim))
    sq = np.zeros((n, n_dim))
    for i in range(0, n_part, chunk):
        xc = x[:, i : i + chunk, :]
        xc = xc - xc[0]  # lowers round-off; the MSD is invariant to a shift
        f = scipy.fft.rfft(xc, n=nfft, axis=0, workers=workers)
        power += (f.real**2 + f.imag**2).sum(axis=1)
        sq += (xc**2).sum(axis=1)
    s2 = scipy.fft.irfft(power, n=nfft, axis=0, workers=workers)[:n]
    counts = (n - np.arange(n))[:, None].astype(float)
    total = 2.0 * sq.sum(axis=0)
    head = np.vstack([np.zeros((1, n_dim)), np.cumsum(sq, axis=0)[:-1]])  # sum_{k<m}
    tail = np.vstack([np.zeros((1, n_dim)), np.cumsum(sq[::-1], axis=0)[:-1]])  # sum_{k>=n-m}
    s1 = total - head - tail
    return (s1 - 2.0 * s2) / counts


def tracer_msd(positions_A: np.ndarray, dt_ps: float, chunk: int = 64) -> MSDCurve:
    """Tracer (self) MSD averaged over ions and all time origins.

    Parameters
    ----------
    positions_A : ndarray (n_frames, n_ions, 3)
        Unwrapped positions, Å.
    dt_ps : float
        Time between frames, ps.
    """
    n, n_ions, _ = positions_A.shape
    sums = msd_sums_fft(positions_A, chunk=chunk)
    return MSDCurve(np.arange(n) * dt_ps, np.maximum(sums / n_ions, 0.0), n_ions, n)


def collective_msd(positions_A: np.ndarray, dt_ps: float, weights: np.ndarray) -> MSDCurve:
    """MSD of the weighted sum of displacements, sum_i w_i r_i (e.g. w = charges).

    Returns the MSD of the single collective coordinate (not divided by the number of ions).
    """
    n = positions_A.shape[0]
    w = np.asarray(weights, dtype=float)
    x = np.einsum("tid,i->td", positions_A - positions_A[0], w)[:, None, :]
    return MSDCurve(np.arange(n) * dt_ps, np.maximum(msd_sums_fft(x), 0.0), 1, n)


def per_particle_msd(positions_A: np.ndarray, lags: np.ndarray, max_block: int = 4_000_000) -> np.ndarray:
    """All-origin MSD of each particle, per axis, at the given lags (Å^2).

    Parameters
    ----------
    positions_A : ndarray (n_frames, n_particles, 3)
        Unwrapped positions.
    lags : ndarray of int
        Lags in frames (1 .. n_frames - 1).
    max_block : int
        Displacements held at once (bounds memory; origins are processed in blocks).

    Returns
    -------
    ndarray (n_particles, n_lags, 3)
    """
    x = np.asarray(positions_A, dtype=float)
    n, n_part, n_dim = x.shape
    out = np.zeros((n_part, len(lags), n_dim))
    block = max(1, max_block // max(1, n_part * n_dim))
    for j, a in enumerate(np.asarray(lags, dtype=int)):
        n_orig = n - a
        acc = np.zeros((n_part, n_dim))
        for t0 in range(0, n_orig, block):
            t1 = min(n_orig, t0 + block)
            d = x[t0 + a : t1 + a] - x[t0:t1]
            acc += np.einsum("tid,tid->id", d, d)
        out[:, j] = acc / n_orig
    return out


def msd_direct(positions_A: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Reference O(N^2) MSD (total, averaged over ions and origins) at the given lags; for tests."""
    out = []
    for m in lags:
        d = positions_A[m:] - positions_A[: len(positions_A) - m]
        out.append((d**2).sum(axis=2).mean())
    return np.asarray(out)
