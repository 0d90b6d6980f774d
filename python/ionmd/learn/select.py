"""Classify explored frames by committee force deviation and pick the ones to label.

Classes on the max force deviation ``d`` (eV/Å) of a frame (DeePMD's
``max_devi_f``): accurate ``d < lo``, candidate ``lo <= d < hi``, failed
``d >= hi``. Only candidates are labelled: accurate frames teach little, failed
ones are usually unphysical.

Picking (``method``):

``spread`` (default)
    Farthest-point sampling over the candidates in a plane of scaled deviation
    ``(d - lo) / (hi - lo)`` and scaled time ``t / t_max`` (of its run); frames of
    different runs (structures, temperatures, seeds) are one unit further apart,
    so every run contributes before any run gives a second frame. It starts at the
    candidate of largest deviation. Neighbouring MD frames are nearly the same
    structure, so this avoids labelling one stretch of trajectory many times.
``random``
    Uniform at random (seeded).
``first``
    The first ``budget`` candidates in run and time order (for comparison only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACCURATE, CANDIDATE, FAILED = "accurate", "candidate", "failed"
CLASSES = (ACCURATE, CANDIDATE, FAILED)


def classify(max_devi_f_eV_A: Sequence[float], lo_eV_A: float, hi_eV_A: float) -> list[str]:
    """Return the class of each frame: accurate (d < lo), candidate (lo <= d < hi), failed (d >= hi).

    A non-finite deviation (NaN from a blown-up model) counts as failed.
    """
    out = []
    for d in np.asarray(max_devi_f_eV_A, dtype=float):
        if not np.isfinite(d) or d >= hi_eV_A:
            out.append(FAILED)
        elif d >= lo_eV_A:
            out.append(CANDIDATE)
        else:
            out.append(ACCURATE)
    return out


def class_counts(classes: Sequence[str]) -> dict[str, int]:
    """Return the number of frames of each class."""
    return {c: sum(1 for x in classes if x == c) for c in CLASSES}


def farthest_point(features: np.ndarray, groups: Sequence[int], budget: int, start: int
                   ) -> list[int]:
    """Greedy farthest-point sampling; rows of different ``groups`` are 1 further apart.

    Parameters
    ----------
    features
        (n, f) array of scaled features.
    groups
        Group label of each row (e.g. the exploration run).
    budget
        Number of rows to pick (at most n).
    start
        Index of the first pick.

    Returns
    -------
    list of int
        Picked row indices, in picking order.
    """
    n = len(features)
    budget = min(budget, n)
    if budget <= 0:
        return []
    groups_arr = np.asarray(groups)
    picked = [start]
    dist = np.full(n, np.inf)
    while len(picked) < budget:
        last = picked[-1]
        d = np.linalg.norm(features - features[last], axis=1) + (groups_arr != groups_arr[last])
        dist = np.minimum(dist, d)
        dist[picked] = -1.0
        picked.append(int(np.argmax(dist)))
    return picked


def select_frames(max_devi_f_eV_A: Sequence[float], time_ps: Sequence[float],
                  runs: Sequence[str], lo_eV_A: float, hi_eV_A: float, budget: int,
                  method: str = "spread", seed: int = 0) -> list[int]:
    """Return the indices (into the given frames) of up to ``budget`` candidates to label.

    Parameters
    ----------
    max_devi_f_eV_A, time_ps, runs
        Per frame: max force deviation (eV/Å), time in its run (ps) and run id.
    lo_eV_A, hi_eV_A
        Trust levels; only candidates (lo <= d < hi) are picked.
    budget
        Maximum number of frames.
    method
        ``spread``, ``random`` or ``first`` (see the module docstring).
    seed
        Seed of ``random``.

    Returns
    -------
    list of int
        Sorted frame indices.
    """
    devi = np.asarray(max_devi_f_eV_A, dtype=float)
    times = np.asarray(time_ps, dtype=float)
    classes = classify(devi, lo_eV_A, hi_eV_A)
    cand = np.array([i for i, c in enumerate(classes) if c == CANDIDATE], dtype=int)
    if len(cand) <= budget:
        return cand.tolist()
    if method == "first":
        return sorted(cand[:budget].tolist())
    if method == "random":
        return sorted(np.random.default_rng(seed).choice(cand, size=budget, replace=False).tolist())
    run_ids = [runs[i] for i in cand]
    names = sorted(set(run_ids))
    group = np.array([names.index(r) for r in run_ids])
    t_max = np.array([max(times[cand][group == g].max(), 1e-12) for g in group])
    features = np.column_stack([(devi[cand] - lo_eV_A) / (hi_eV_A - lo_eV_A), times[cand] / t_max])
    start = int(np.argmax(devi[cand]))
    picked = farthest_point(features, group, budget, start)
    return sorted(cand[picked].tolist())
