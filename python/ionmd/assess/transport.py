"""Transport check: one short MD sweep of every candidate beside the reference model.

The sweep goes through the ordinary driver (:func:`ionmd.study.md.launch_sweep`, i.e.
``mpirun ionmd sweep``; torch models through ``pair_style mlip/torch``), the analysis
through :func:`ionmd.analysis.sweep.analyse_sweep` with a
:class:`ionmd.analysis.mechanism_report.MechanismCollector` (each dump read once), the
defect jump-rate fits through :func:`ionmd.analysis.mechanism_report.defect_jump_arrhenius`,
and the cost (µs/atom/step) from the runs' LAMMPS logs (:func:`ionmd.study.cost.model_cost`).

Agreement rule: a candidate's number ``v ± s`` (one-sigma) agrees with the reference's
``r ± t`` when ``|v - r| <= 1.96 sqrt(s^2 + t^2)``, i.e. their difference is zero within
its 95 % interval. Compared: D at every temperature both have, Ea of D(T), the defect
jump rate at every temperature and its Ea. A number without a finite interval is not
compared (``agree`` None, flag ``no_interval``); flags of both numbers travel with the
comparison.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ionmd.analysis.arrhenius import ArrheniusResult
from ionmd.analysis.diffusion import DiffusionResult
from ionmd.analysis.mechanism_report import MechanismCollector, defect_jump_arrhenius
from ionmd.analysis.sweep import analyse_sweep, read_sweep
from ionmd.errors import InputError
from ionmd.models.export import export_model
from ionmd.results import Result
from ionmd.study.cost import model_cost
from ionmd.study.md import launch_sweep
from ionmd.study.progress import DemoProgress
from ionmd.tomlconfig import dumps

Z95 = 1.96
"""Two-sided 95 % normal quantile of the agreement rule."""


@dataclass
class Comparison(Result):
    """One transport number of a candidate beside the reference's.

    ``quantity`` is e.g. ``D_cm2_s@900K``, ``Ea_D_eV``, ``jump_rate_per_ps[vacancy]@900K``
    or ``Ea_jump_eV[vacancy]``; errors are one-sigma; ``tolerance`` is
    ``1.96 sqrt(err^2 + ref_err^2)``; ``agree`` is None when not comparable.
    """

    model: str
    quantity: str
    value: float
    err: float
    ref_value: float
    ref_err: float
    difference: float
    tolerance: float
    agree: bool | None
    flags: list[str] = field(default_factory=list)


@dataclass
class ModelTransport(Result):
    """Transport numbers and cost of one model of the check."""

    model: str
    is_reference: bool
    us_per_atom_step: float | None
    diffusion: list[dict] = field(default_factory=list)
    arrhenius_D: dict | None = None
    jump_arrhenius: dict[str, dict] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    agrees: bool | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = super().to_dict()
        d["comparisons"] = [c.to_dict() for c in self.comparisons]
        return d


@dataclass
class TransportResult(Result):
    """The transport check: every model's numbers, its comparisons and the sweep used."""

    reference: str
    sweep_dir: str
    models: list[ModelTransport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"reference": self.reference, "sweep_dir": self.sweep_dir,
                "models": [m.to_dict() for m in self.models], "notes": self.notes}


def compare(model: str, quantity: str, v: float, s: float, r: float, t: float,
            flags: list[str]) -> Comparison:
    """Apply the agreement rule (module docstring) to ``v ± s`` against the reference ``r ± t``."""
    vals = np.array([v, s, r, t], dtype=float)
    flags = list(dict.fromkeys(flags))
    if not np.all(np.isfinite(vals)):
        return Comparison(model, quantity, v, s, r, t, float(v - r), float("nan"), None,
                          flags + ["no_interval"])
    tol = Z95 * float(np.hypot(s, t))
    return Comparison(model, quantity, v, s, r, t, float(v - r), tol, bool(abs(v - r) <= tol), flags)


def sweep_toml_text(t: dict[str, Any], models: dict[str, Any], sweep_dir: Path) -> str:
    """The ``ionmd sweep`` TOML of the check (paths absolute)."""
    md = dict(t.get("md") or {})
    if t.get("species"):
        md["species"] = list(t["species"])
    return dumps({
        "name": "assess-transport", "sweep_dir": str(sweep_dir),
        "temperatures_K": [float(x) for x in t["temperatures_K"]], "seeds": list(t["seeds"]),
        "structure": t["structure"], "models": dict(models), "md": md or None,
    })


def _jump_points(fit: ArrheniusResult) -> dict[float, tuple[float, float]]:
    return {float(T): (float(r), float(e)) for T, r, e in zip(fit.T_K, fit.D_cm2_s, fit.D_err_cm2_s, strict=True)}


def _model_row(name: str, ref: str, diff: dict[float, DiffusionResult], arr: ArrheniusResult | None,
               jumps: dict[str, ArrheniusResult], cost: float | None) -> ModelTransport:
    return ModelTransport(name, name == ref, cost, [diff[T].to_dict() for T in sorted(diff)],
                          arr.to_dict() if arr is not None else None,
                          {k: f.to_dict() for k, f in jumps.items()})


def _compare_model(row: ModelTransport, ref: ModelTransport) -> None:
    ref_D = {float(d["T_K"]): d for d in ref.diffusion}
    for d in row.diffusion:
        T = float(d["T_K"])
        if T in ref_D:
            r = ref_D[T]
            row.comparisons.append(compare(row.model, f"D_cm2_s@{T:g}K", d["D_cm2_s"], d["D_err_cm2_s"],
                                           r["D_cm2_s"], r["D_err_cm2_s"],
                                           list(d.get("flags") or []) + list(r.get("flags") or [])))
    fits = [("Ea_D_eV", row.arrhenius_D, ref.arrhenius_D)]
    fits += [(f"Ea_jump_eV[{k}]", row.jump_arrhenius.get(k), ref.jump_arrhenius.get(k))
             for k in sorted(set(row.jump_arrhenius) | set(ref.jump_arrhenius))]
    for q, a, b in fits:
        if a is None or b is None:
            row.comparisons.append(Comparison(row.model, q, float("nan"), float("nan"), float("nan"),
                                              float("nan"), float("nan"), float("nan"), None,
                                              [f"no_fit:{m}" for m, f in ((row.model, a), (ref.model, b))
                                               if f is None]))
            continue
        row.comparisons.append(compare(row.model, q, a["Ea_eV"], a["Ea_err_eV"], b["Ea_eV"], b["Ea_err_eV"],
                                       list(a.get("flags") or []) + list(b.get("flags") or [])))
    for k in sorted(set(row.jump_arrhenius) & set(ref.jump_arrhenius)):
        pa = _jump_points(ArrheniusResult.from_dict(row.jump_arrhenius[k]))
        pb = _jump_points(ArrheniusResult.from_dict(ref.jump_arrhenius[k]))
        for T in sorted(set(pa) & set(pb)):
            row.comparisons.append(compare(row.model, f"jump_rate_per_ps[{k}]@{T:g}K", *pa[T], *pb[T], []))
    judged = [c.agree for c in row.comparisons if c.agree is not None]
    row.agrees = all(judged) if judged else None
    row.flags = sorted({f for c in row.comparisons for f in c.flags})


def export_fitted(fitted: dict[str, str], out: Path, dtype: str | None = None) -> dict[str, str]:
    """Export each fitted candidate's checkpoint to ``out/<name>.pt`` for the plugin; name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, src in fitted.items():
        dst = out / f"{name}.pt"
        if not dst.is_file() or dst.stat().st_mtime < Path(src).stat().st_mtime:  # new or refitted
            export_model(src, dst, dtype=dtype)
        paths[name] = str(dst)
    return paths


def transport_check(t: dict[str, Any], out: str | Path, fitted_models: dict[str, str] | None = None,
                    progress: DemoProgress | None = None) -> TransportResult:
    """Run (or resume) the check's sweep and compare every model with the reference.

    Parameters
    ----------
    t
        The validated ``[transport]`` table (:func:`ionmd.assess.config.load_assess_config`).
    out
        Output folder; the sweep goes to ``out/sweep``, exported models to ``out/models``.
    fitted_models
        Checkpoint of each candidate in ``t["fitted"]`` (exported here).
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    fitted_models = fitted_models or {}
    missing = [n for n in t["fitted"] if n not in fitted_models]
    if missing:
        raise InputError(f"transport.fitted: no trained model for {', '.join(missing)}")
    models = dict(t["models"])
    models.update(export_fitted({n: fitted_models[n] for n in t["fitted"]}, out / "models",
                                t.get("export_dtype")))
    sweep_dir = out / "sweep"
    toml = out / "sweep.toml"
    toml.write_text(sweep_toml_text(t, models, sweep_dir))
    steps = int((t.get("md") or {}).get("n_prod", 10000)) + int((t.get("md") or {}).get("n_equil", 1000))
    progress = progress or DemoProgress({"transport": 60.0}, label="assess")
    progress.start("transport", "transport check MD sweep")
    launch_sweep(toml, out / "logs", int(t["n_ranks"]), 1, progress, steps)
    collect = MechanismCollector(sweep_dir, t.get("species"))
    ana = analyse_sweep(sweep_dir, species=t.get("species"), on_run=collect)
    mech, notes = collect.results()
    runs = read_sweep(sweep_dir)["runs"]
    result = TransportResult(t["reference"], str(sweep_dir), notes=list(ana.skipped) + notes)
    rows = {}
    for name in models:
        if name not in ana.diffusion:
            result.notes.append(f"{name}: no analysed run")
            continue
        dirs = [sweep_dir / r["dir"] for r in runs if r.get("model") == name and r.get("dir")]
        jumps = defect_jump_arrhenius(mech.get(name, {}), name)
        rows[name] = _model_row(name, t["reference"], ana.diffusion[name], ana.arrhenius.get(name), jumps,
                                model_cost(dirs).us_per_atom_step)
    if t["reference"] not in rows:
        raise InputError(f"transport check: the reference model {t['reference']!r} has no analysed run "
                         f"(see {out / 'logs' / 'sweep.log'})")
    for name, row in rows.items():
        if name != t["reference"]:
            _compare_model(row, rows[t["reference"]])
        result.models.append(row)
    return result


def write_transport_tables(res: TransportResult, out: Path) -> list[Path]:
    """``transport.csv`` (D and cost per model and T) and ``transport_comparisons.csv``."""
    p1, p2 = out / "transport.csv", out / "transport_comparisons.csv"
    with open(p1, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "reference", "T_K", "D_cm2_s", "D_err_cm2_s", "Ea_D_eV", "Ea_D_err_eV",
                    "us_per_atom_step", "flags"])
        for m in res.models:
            a = m.arrhenius_D or {}
            for d in m.diffusion:
                w.writerow([m.model, m.is_reference, d["T_K"], d["D_cm2_s"], d["D_err_cm2_s"], a.get("Ea_eV"),
                            a.get("Ea_err_eV"), m.us_per_atom_step, ";".join(d.get("flags") or [])])
    with open(p2, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "quantity", "value", "err", "ref_value", "ref_err", "difference",
                    "tolerance_95", "agree", "flags"])
        for m in res.models:
            for c in m.comparisons:
                w.writerow([c.model, c.quantity, c.value, c.err, c.ref_value, c.ref_err, c.difference,
                            c.tolerance, c.agree, ";".join(c.flags)])
    return [p1, p2]
