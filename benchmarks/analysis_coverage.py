"""Calibration of ionmd's 95% D intervals on synthetic walks with a known D.

The walk kinds are those of ``tests/test_analysis_edges.py`` (Gaussian steps; simple-cubic
lattice hops with probability q per frame, with and without 0.3 Å vibration; one moving
interstitial among vibrating ions). For each kind it prints the fraction of walks whose
interval holds the truth, and how many intervals excluded every positive D (must be 0).

Usage::

    python benchmarks/analysis_coverage.py --walks 150
"""

from __future__ import annotations

import argparse

import numpy as np

from ionmd.analysis.diffusion import A2_PS_TO_CM2_S, diffusion_from_trajectory
from ionmd.analysis.synthetic import COVERAGE_WALKS, coverage_walk
from ionmd.analysis.trajectory import Trajectory


def _traj(pos: np.ndarray, L_A: float = 30.0) -> Trajectory:
    n = pos.shape[0]
    return Trajectory(pos, np.arange(n) * 1.0, np.full(n, L_A**3), np.broadcast_to(np.eye(3) * L_A, (n, 3, 3)),
                      np.zeros((n, 3)), ["X"] * pos.shape[1], np.arange(pos.shape[1]), np.zeros((n, 3)), False,
                      "synthetic")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--walks", type=int, default=150)
    p.add_argument("--seed", type=int, default=5000)
    args = p.parse_args(argv)
    print(f"{'kind':7s} {'q':>6s} {'ions':>4s} {'vib':>4s} {'frames':>6s} {'coverage':>8s} {'neg':>3s} "
          f"{'not resolved':>12s}")
    for k, spec in enumerate(COVERAGE_WALKS):
        rng = np.random.default_rng(args.seed + k)
        cov = neg = unres = 0
        for _ in range(args.walks):
            pos, truth = coverage_walk(*spec, rng)
            res, _ = diffusion_from_trajectory(_traj(pos), "X")
            lo, hi = res.D_ci95_cm2_s
            cov += lo <= truth * A2_PS_TO_CM2_S <= hi
            neg += hi <= 0
            unres += not res.resolved
        kind, q, n_ions, vib, n_frames = spec
        print(f"{kind:7s} {q if q else '-':>6} {n_ions:4d} {vib:4.1f} {n_frames:6d} {cov / args.walks:8.3f} "
              f"{neg:3d} {unres:12d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
