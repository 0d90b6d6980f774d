"""Run a whole assessment and write its tables, plots, JSON and Markdown verdict.

Files in the output folder: ``assess.json``; ``learning_curve.csv``,
``learning_points.csv``, ``locality.csv``, ``transport.csv``,
``transport_comparisons.csv``, ``candidates.csv`` (cost column); ``learning_curve.png``,
``locality.png``, ``transport_D.png``; ``verdict.md``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ionmd.assess.config import AssessConfig
from ionmd.assess.learning import CurveSummary, FitPoint, ScanResult, learning_curve, locality_scan
from ionmd.assess.transport import (
    ModelTransport,
    TransportResult,
    transport_check,
    write_transport_tables,
)
from ionmd.models.fit import FitResult, fit_mace
from ionmd.results import Result


@dataclass
class Verdict(Result):
    """The cheapest candidate whose transport numbers agree with the reference, or none.

    ``choice`` is None when no candidate agrees (``reason`` says why); ``flags`` are the
    flags of the compared numbers of the choice (or of every candidate when none).
    """

    choice: str | None
    us_per_atom_step: float | None
    reference: str | None
    reference_us_per_atom_step: float | None
    reason: str
    flags: list[str] = field(default_factory=list)


@dataclass
class AssessResult:
    """Everything ``ionmd assess`` measured."""

    config: str
    learning: ScanResult | None = None
    cutoff: ScanResult | None = None
    layers: ScanResult | None = None
    transport: TransportResult | None = None
    verdict: Verdict | None = None
    wall_s: float = 0.0
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        def d(x):
            return x.to_dict() if x is not None else None

        return {"config": self.config, "learning": d(self.learning), "locality_cutoff": d(self.cutoff),
                "locality_layers": d(self.layers), "transport": d(self.transport), "verdict": d(self.verdict),
                "wall_s": self.wall_s, "files": self.files}


def choose(transport: TransportResult | None) -> Verdict:
    """The verdict: the cheapest agreeing candidate (module :mod:`ionmd.assess.transport` rule)."""
    if transport is None:
        return Verdict(None, None, None, None, "no transport check was run ([transport] absent)",
                       ["no_transport_check"])
    ref = next(m for m in transport.models if m.is_reference)
    cands = [m for m in transport.models if not m.is_reference]
    agreeing = [m for m in cands if m.agrees]
    if not agreeing:
        why = []
        for m in cands:
            if m.agrees is None:
                why.append(f"{m.model}: no comparable number (intervals missing)")
            else:
                bad = [c.quantity for c in m.comparisons if c.agree is False]
                why.append(f"{m.model}: disagrees on {', '.join(bad)}")
        return Verdict(None, None, ref.model, ref.us_per_atom_step,
                       "no candidate agrees with the reference within the intervals: " + "; ".join(why),
                       sorted({f for m in cands for f in m.flags}))

    def cost(m: ModelTransport) -> float:
        return m.us_per_atom_step if m.us_per_atom_step is not None else float("inf")

    best = min(agreeing, key=cost)
    flags = list(best.flags) + (["no_cost"] if best.us_per_atom_step is None else [])
    n_judged = sum(c.agree is not None for c in best.comparisons)
    reason = (f"{best.model} agrees with {ref.model} on all {n_judged} compared numbers within their "
              f"95% intervals and is the cheapest of {len(agreeing)} agreeing candidate(s)")
    return Verdict(best.model, best.us_per_atom_step, ref.model, ref.us_per_atom_step, reason, flags)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return path


def _plot_scan(ax, summary: list[CurveSummary], xlabel: str, log: bool) -> None:
    for k, cand in enumerate(dict.fromkeys(s.candidate for s in summary)):
        rows = [s for s in summary if s.candidate == cand]
        ax.errorbar([s.x for s in rows], [s.force_rmse_mean_meV_A for s in rows],
                    yerr=[s.force_rmse_std_meV_A for s in rows], fmt="o-", color=f"C{k % 10}", capsize=3,
                    label=f"{cand} (mean ± sd over {rows[0].n_seeds} seed(s))")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("held-out force RMSE (meV/Å)")
    ax.legend(fontsize=8)


def plot_learning(scan: ScanResult, path: Path) -> Path:
    """Held-out force and energy RMSE against training frames (log-log, error bars over seeds)."""
    from ionmd.analysis.plots import pyplot as _plt

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    _plot_scan(a1, scan.summary, "training frames", log=True)
    for k, cand in enumerate(dict.fromkeys(s.candidate for s in scan.summary)):
        rows = [s for s in scan.summary if s.candidate == cand]
        a2.errorbar([s.x for s in rows], [s.energy_rmse_mean_meV_atom for s in rows],
                    yerr=[s.energy_rmse_std_meV_atom for s in rows], fmt="s-", color=f"C{k % 10}", capsize=3,
                    label=cand)
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("training frames")
    a2.set_ylabel("held-out energy RMSE (meV/atom)")
    a2.legend(fontsize=8)
    fig.suptitle("Learning curves (fixed held-out split)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_locality(cutoff: ScanResult, layers: ScanResult, path: Path) -> Path:
    """Held-out force RMSE against cutoff (Å) and against message-passing layers."""
    from ionmd.analysis.plots import pyplot as _plt

    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    _plot_scan(a1, cutoff.summary, "cutoff r_max (Å)", log=False)
    _plot_scan(a2, layers.summary, "message-passing layers", log=False)
    fig.suptitle("Locality: force error against interaction range")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def verdict_markdown(res: AssessResult) -> str:
    """The short Markdown verdict: learning trend, locality, transport table, choice."""
    lines = ["# ionmd assess verdict", "", f"Config: `{res.config}`", ""]
    if res.learning is not None and res.learning.summary:
        lines += ["## Learning curve (held-out force RMSE, meV/Å, mean ± sd over seeds)", "",
                  "| candidate | frames | force RMSE | energy RMSE (meV/atom) |", "|---|---|---|---|"]
        lines += [f"| {s.candidate} | {s.x:g} | {s.force_rmse_mean_meV_A:.1f} ± {s.force_rmse_std_meV_A:.1f} | "
                  f"{s.energy_rmse_mean_meV_atom:.2f} ± {s.energy_rmse_std_meV_atom:.2f} |"
                  for s in res.learning.summary]
        lines += [""] + [f"- note: {n}" for n in res.learning.notes]
        lines += [f"- flag: `{f}`" for f in res.learning.flags] + [""]
    for scan, what in ((res.cutoff, "cutoff (Å)"), (res.layers, "layers")):
        if scan is not None and scan.summary:
            lines += [f"## Locality: force RMSE against {what}", "",
                      " | ".join(f"{s.x:g}: {s.force_rmse_mean_meV_A:.1f} meV/Å" for s in scan.summary), ""]
    if res.transport is not None:
        lines += ["## Transport check (95% intervals, reference "
                  f"`{res.transport.reference}`)", "",
                  "| model | µs/atom/step | agrees | disagreeing numbers | flags |", "|---|---|---|---|---|"]
        for m in res.transport.models:
            bad = [c.quantity for c in m.comparisons if c.agree is False]
            agree = "reference" if m.is_reference else {True: "yes", False: "no", None: "not comparable"}[m.agrees]
            lines.append(f"| {m.model} | {_fmt(m.us_per_atom_step)} | {agree} | {', '.join(bad) or '-'} | "
                         f"{', '.join(m.flags) or '-'} |")
        lines += [""] + [f"- note: {n}" for n in res.transport.notes] + [""]
    v = res.verdict
    if v is not None:
        head = f"**Verdict: {v.choice}**" if v.choice else "**Verdict: none**"
        lines += ["## Verdict", "", f"{head} ({_fmt(v.us_per_atom_step)} µs/atom/step; reference "
                  f"{_fmt(v.reference_us_per_atom_step)}). {v.reason}."]
        if v.flags:
            lines += ["", "Flags of the compared numbers: " + ", ".join(f"`{f}`" for f in v.flags)]
    return "\n".join(lines) + "\n"


def _points_rows(points: list[FitPoint]) -> list[dict]:
    return [p.to_dict() for p in points]


def run_assess(cfg: AssessConfig, out: str | Path, parts: tuple[str, ...] = ("learning", "locality", "transport"),
               fitter: Callable[..., FitResult] = fit_mace) -> AssessResult:
    """Run the parts of ``cfg`` in ``parts`` into ``out`` and write every file (module docstring).

    Fits are reused from ``out/fits`` when their recipe matches (a rerun resumes), and the
    transport sweep resumes its finished runs.
    """
    t0 = time.time()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    res = AssessResult(str(cfg.path))
    files: list[Path] = []
    largest: dict[str, str] = {}
    if "learning" in parts or (cfg.transport and cfg.transport["fitted"] and "transport" in parts):
        res.learning = learning_curve(cfg.data, out, cfg.candidates, cfg.sizes, cfg.learning_seeds,
                                      cfg.split_seed, fitter)
        n_max = max(p.n_train for p in res.learning.points)
        largest = {p.candidate: p.model for p in res.learning.points
                   if p.n_train == n_max and p.seed == cfg.split_seed}
        files += [_write_csv(out / "learning_curve.csv", [s.to_dict() for s in res.learning.summary]),
                  _write_csv(out / "learning_points.csv", _points_rows(res.learning.points)),
                  plot_learning(res.learning, out / "learning_curve.png")]
    if "locality" in parts and (cfg.cutoffs_A or cfg.layers):
        cand = cfg.candidate(cfg.locality_candidate or cfg.candidates[0].name)
        res.cutoff, res.layers = locality_scan(cfg.data, out, cand, cfg.cutoffs_A, cfg.layers,
                                               cfg.locality_seeds, cfg.locality_n_train or max(cfg.sizes), cfg.split_seed,
                                               fitter)
        rows = [s.to_dict() for s in res.cutoff.summary + res.layers.summary]
        files += [_write_csv(out / "locality.csv", rows),
                  plot_locality(res.cutoff, res.layers, out / "locality.png")]
    if "transport" in parts and cfg.transport is not None:
        res.transport = transport_check(cfg.transport, out / "transport", largest)
        files += write_transport_tables(res.transport, out)
        from ionmd.analysis.arrhenius import ArrheniusResult
        from ionmd.analysis.plots import plot_arrhenius

        fits = [ArrheniusResult.from_dict(m.arrhenius_D) for m in res.transport.models if m.arrhenius_D]
        if fits:
            files.append(plot_arrhenius(fits, out / "transport_D.png", title="Transport check: tracer D(T)"))
    res.verdict = choose(res.transport)
    cost_rows = [{"model": m.model, "reference": m.is_reference, "us_per_atom_step": m.us_per_atom_step,
                  "agrees": m.agrees, "flags": ";".join(m.flags)}
                 for m in (res.transport.models if res.transport else [])]
    known = {r["model"] for r in cost_rows}
    cost_rows += [{"model": c.name, "reference": False, "us_per_atom_step": None, "agrees": None,
                   "flags": "not_in_transport_check"} for c in cfg.candidates if c.name not in known]
    files.append(_write_csv(out / "candidates.csv", cost_rows))
    (out / "verdict.md").write_text(verdict_markdown(res))
    files.append(out / "verdict.md")
    res.wall_s = time.time() - t0
    res.files = [str(f) for f in files] + [str(out / "assess.json")]
    (out / "assess.json").write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    return res
