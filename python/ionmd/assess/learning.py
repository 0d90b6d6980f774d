"""Learning curves and locality scans: held-out errors of MACE fits on a fixed split.

Every fit goes through :func:`ionmd.models.fit.fit_mace` with ``seed = split_seed`` and
``committee = n_seeds``: the train / valid / test split depends on ``split_seed`` only,
so every point of a curve is scored on the same held-out frames, and the members
(training seeds ``split_seed .. split_seed + n_seeds - 1``) give the seed spread. The
training sets are nested: ``n_train`` takes the first frames of one shuffled pool.

A fit directory holds ``assess_recipe.json``; a rerun with the same recipe reuses it
(so the locality scan's default point is the learning curve's largest one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ionmd.assess.config import Candidate
from ionmd.errors import InputError
from ionmd.models.fit import FitResult, fit_mace, load_labelled, split_indices
from ionmd.results import Result


@dataclass
class FitPoint(Result):
    """Held-out errors of one trained member.

    Attributes
    ----------
    study
        ``learning``, ``cutoff`` or ``layers``.
    n_train
        Training frames; ``n_test`` held-out frames scored.
    seed
        The member's training seed.
    """

    candidate: str
    study: str
    n_train: int
    seed: int
    r_max_A: float
    layers: int
    test_energy_rmse_meV_atom: float
    test_force_rmse_meV_A: float
    n_test: int
    model: str
    fit_dir: str


@dataclass
class CurveSummary(Result):
    """Mean and spread over seeds of the held-out errors at one point of a scan.

    ``x`` is the scanned value: training frames (``learning``), cutoff in Å
    (``cutoff``) or message-passing layers (``layers``).
    """

    candidate: str
    study: str
    x: float
    n_seeds: int
    force_rmse_mean_meV_A: float
    force_rmse_std_meV_A: float
    energy_rmse_mean_meV_atom: float
    energy_rmse_std_meV_atom: float


@dataclass
class ScanResult(Result):
    """All members of one scan and their per-point summaries."""

    study: str
    points: list[FitPoint] = field(default_factory=list)
    summary: list[CurveSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict (points and summaries as dicts)."""
        return {"study": self.study, "points": [p.to_dict() for p in self.points],
                "summary": [s.to_dict() for s in self.summary], "notes": self.notes,
                "flags": self.flags}


def train_pool_size(n_frames: int, split_seed: int = 0) -> int:
    """Training frames available after :func:`ionmd.models.fit.split_indices` holds out valid and test."""
    return len(split_indices(n_frames, seed=split_seed)[0])


def cap_sizes(sizes: list[int], n_pool: int) -> tuple[list[int], list[str]]:
    """Sizes capped by the pool (duplicates dropped), with a note per capped size."""
    capped = sorted({min(int(s), n_pool) for s in sizes})
    notes = [f"training-set size {s} capped to the {n_pool} training frames available"
             for s in sorted(sizes) if s > n_pool]
    return capped, notes


def _fit_dir(root: Path, cand: Candidate, n_train: int) -> Path:
    return root / "fits" / f"{cand.name}_n{n_train}_rc{cand.r_max_A:g}_L{cand.layers}"


def fit_members(data: Path, root: Path, cand: Candidate, n_train: int, n_seeds: int,
                split_seed: int, study: str,
                fitter: Callable[..., FitResult] = fit_mace) -> list[FitPoint]:
    """Train ``n_seeds`` members of ``cand`` on ``n_train`` frames; return their held-out errors.

    Reuses the fit directory when its ``assess_recipe.json`` holds the same recipe with at
    least ``n_seeds`` members (the first ``n_seeds`` are taken).
    """
    wd = _fit_dir(root, cand, n_train)
    cdict = cand.to_dict()
    cdict["options"] = {k: v for k, v in cand.options.items() if k not in ("r_max", "num_interactions")}
    recipe = {"candidate": cdict, "n_train": n_train, "n_seeds": n_seeds,
              "split_seed": split_seed, "data": str(data)}
    rfile, ffile = wd / "assess_recipe.json", wd / "fit.json"
    old = json.loads(rfile.read_text()) if rfile.is_file() and ffile.is_file() else None
    if old is not None and {**old, "n_seeds": n_seeds} == recipe and old["n_seeds"] >= n_seeds:
        fit = json.loads(ffile.read_text())  # same recipe with as many members or more: reuse
        members, n_test = fit["members"][:n_seeds], int(fit["n_test"])
    else:
        extra: list[str] = []
        for key, val in cand.options.items():
            extra += [f"--{key}", val]
        res = fitter(data, wd, size=cand.size, committee=n_seeds, seed=split_seed, epochs=cand.epochs,
                     dtype=cand.dtype, batch_size=min(cand.batch_size, n_train), n_train=n_train,
                     extra_args=extra)
        members, n_test = [m.__dict__ for m in res.members], res.n_test
        rfile.write_text(json.dumps(recipe, indent=2) + "\n")
    return [FitPoint(cand.name, study, n_train, int(m["seed"]), cand.r_max_A, cand.layers,
                     float(m["test_energy_rmse_meV_atom"]), float(m["test_force_rmse_meV_A"]), n_test,
                     str(m["deployable"]), str(wd)) for m in members]


def summarise(points: list[FitPoint], study: str) -> list[CurveSummary]:
    """Mean and standard deviation over seeds per (candidate, scanned value)."""
    key = {"learning": "n_train", "cutoff": "r_max_A", "layers": "layers"}[study]
    groups: dict[tuple[str, float], list[FitPoint]] = {}
    for p in points:
        groups.setdefault((p.candidate, float(getattr(p, key))), []).append(p)
    out = []
    for (cand, x), pts in sorted(groups.items()):
        f = np.array([p.test_force_rmse_meV_A for p in pts])
        e = np.array([p.test_energy_rmse_meV_atom for p in pts])
        ddof = 1 if len(pts) > 1 else 0
        out.append(CurveSummary(cand, study, x, len(pts), float(f.mean()), float(f.std(ddof=ddof)),
                                float(e.mean()), float(e.std(ddof=ddof))))
    return out


def learning_curve(data: str | Path, out: str | Path, candidates: list[Candidate], sizes: list[int],
                   n_seeds: int, split_seed: int = 0,
                   fitter: Callable[..., FitResult] = fit_mace) -> ScanResult:
    """Held-out energy and force RMSE of every candidate against training-set size.

    Sizes beyond the training pool are capped (noted). The flag
    ``force_error_not_falling:<candidate>`` marks a candidate whose mean force error at
    the largest size is not below that at the smallest.
    """
    data = Path(data)
    n_pool = train_pool_size(len(load_labelled(data)), split_seed)
    sizes, notes = cap_sizes(sizes, n_pool)
    scan = ScanResult("learning", notes=notes)
    for cand in candidates:
        for n in sizes:
            scan.points += fit_members(data, Path(out), cand, n, n_seeds, split_seed, "learning", fitter)
    scan.summary = summarise(scan.points, "learning")
    if len(sizes) >= 2:
        for cand in candidates:
            rows = [s for s in scan.summary if s.candidate == cand.name]
            if rows[-1].force_rmse_mean_meV_A >= rows[0].force_rmse_mean_meV_A:
                scan.flags.append(f"force_error_not_falling:{cand.name}")
    return scan


def locality_scan(data: str | Path, out: str | Path, cand: Candidate, cutoffs_A: list[float],
                  layers: list[int], n_seeds: int, n_train: int | None = None, split_seed: int = 0,
                  fitter: Callable[..., FitResult] = fit_mace) -> tuple[ScanResult, ScanResult]:
    """Held-out errors of ``cand`` against cutoff (at its layers) and against layers (at its cutoff).

    ``n_train`` (capped by the training pool; default the whole pool) is best the learning
    curve's largest size, so that the default point reuses its fit.
    """
    data = Path(data)
    n_pool = train_pool_size(len(load_labelled(data)), split_seed)
    n = min(n_train or n_pool, n_pool)
    if n < 1:
        raise InputError(f"{data}: no training frames for the locality scan")
    by_cut = ScanResult("cutoff")
    for rc in cutoffs_A:
        by_cut.points += fit_members(data, Path(out), cand.with_options(r_max=rc), n, n_seeds, split_seed,
                                     "cutoff", fitter)
    by_cut.summary = summarise(by_cut.points, "cutoff")
    by_layers = ScanResult("layers")
    for nl in layers:
        by_layers.points += fit_members(data, Path(out), cand.with_options(num_interactions=nl), n, n_seeds,
                                        split_seed, "layers", fitter)
    by_layers.summary = summarise(by_layers.points, "layers")
    return by_cut, by_layers
