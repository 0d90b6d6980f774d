"""Analyse a sweep directory (contract 2): D per model and temperature, then Arrhenius fits."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ionmd.analysis.arrhenius import ArrheniusResult, fit_arrhenius
from ionmd.analysis.diffusion import DiffusionResult, combine_runs, diffusion_from_trajectory
from ionmd.analysis.msd import MSDCurve
from ionmd.analysis.trajectory import Selection, Trajectory, load_trajectory
from ionmd.driver.sweepdir import index_path, read_index_json
from ionmd.errors import InputError
from ionmd.lammpsio.datafile import parse_type_map, read_data_file


@dataclass
class SweepAnalysis:
    """Results of a sweep: combined D per (model, T), and an Arrhenius fit per model."""

    name: str
    diffusion: dict[str, dict[float, DiffusionResult]] = field(default_factory=dict)
    arrhenius: dict[str, ArrheniusResult] = field(default_factory=dict)
    msd: dict[str, dict[float, list[tuple[MSDCurve, DiffusionResult]]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "models": {
                m: {
                    "diffusion": [self.diffusion[m][T].to_dict() for T in sorted(self.diffusion[m])],
                    "arrhenius": self.arrhenius[m].to_dict() if m in self.arrhenius else None,
                }
                for m in self.diffusion
            },
            "skipped": self.skipped,
        }


def read_sweep(sweep_dir: str | Path) -> dict:
    """Return the parsed ``sweep.json`` of a sweep directory (run entries as dicts).

    Read by :func:`ionmd.driver.sweepdir.read_index_json`, the one reader of the index;
    the analysis accepts partial run entries, checking per run what it needs.
    """
    return read_index_json(sweep_dir)


def _run_selection(run: dict, f: Path, species: list[str] | None) -> Selection:
    tm = run.get("type_map") or {}
    if isinstance(tm, str):
        tm = parse_type_map(tm)
    try:
        type_map = {int(k): str(v) for k, v in tm.items()}
    except (ValueError, AttributeError):
        raise InputError(f"'{f}' run '{run.get('id')}': key 'type_map' is not a {{type: symbol}} map") from None
    sp = species or run.get("species") or []
    if not sp:
        raise InputError(f"'{f}' run '{run.get('id')}' has no 'species'; pass --species")
    return Selection(species=list(sp), type_map=type_map)


def system_symbols(sweep_dir: Path, run: dict, sel: Selection) -> list[str] | None:
    """Symbols of every atom of a run's system, from its ``data_file`` (None when unavailable)."""
    if not run.get("data_file"):
        return None
    path = sweep_dir / run["data_file"]
    if not path.is_file():
        return None
    return read_data_file(path, type_map=sel.type_map or None).symbols


def analyse_sweep(sweep_dir: str | Path, species: list[str] | None = None,
                  charges: dict[str, float] | None = None, on_run: Callable[[dict, Trajectory], None] | None = None,
                  **window_kw) -> SweepAnalysis:
    """Analyse every ``done`` run of a sweep, combine seeds per (model, T) and fit Arrhenius per model.

    Runs whose dump cannot be read are skipped with a warning (and listed in ``skipped``).
    ``on_run(run, trajectory)`` is called with each loaded run (its ``sweep.json`` entry),
    so that other analyses (mechanisms) use the same load.
    """
    sweep_dir = Path(sweep_dir)
    data = read_sweep(sweep_dir)
    f = index_path(sweep_dir)
    out = SweepAnalysis(name=str(data.get("name", sweep_dir.name)))
    groups: dict[str, dict[float, list]] = {}
    for run in data["runs"]:
        rid = run.get("id", "?")
        if run.get("status") != "done":
            out.skipped.append(f"{rid}: status {run.get('status')}")
            continue
        for key in ("model", "T_K", "dump", "dt_fs"):
            if run.get(key) is None:
                raise InputError(f"'{f}' run '{rid}' has no '{key}'")
        sel = _run_selection(run, f, species)
        dump = sweep_dir / run["dump"]
        try:
            traj = load_trajectory(dump, sel, float(run["dt_fs"]),
                                   system_symbols=system_symbols(sweep_dir, run, sel))
            res, msd = diffusion_from_trajectory(traj, sel.label(), **window_kw)
            res.T_K = float(run["T_K"])
            if charges:
                from ionmd.analysis.diffusion import add_conductivity

                add_conductivity(res, traj, charges, float(run["T_K"]))
            if on_run is not None:
                on_run(run, traj)
        except InputError as exc:
            warnings.warn(f"run '{rid}' skipped: {exc}", stacklevel=2)
            out.skipped.append(f"{rid}: {exc}")
            continue
        groups.setdefault(str(run["model"]), {}).setdefault(float(run["T_K"]), []).append((msd, res))
    if not groups:
        raise InputError(f"sweep '{sweep_dir}' has no finished run that could be analysed "
                         f"({len(out.skipped)} skipped)")
    for model, by_T in groups.items():
        out.msd[model] = by_T
        out.diffusion[model] = {}
        for T, items in sorted(by_T.items()):
            comb = combine_runs([r for _, r in items])
            comb.T_K = T
            out.diffusion[model][T] = comb
        Ts = sorted(out.diffusion[model])
        ok = [T for T in Ts if out.diffusion[model][T].D_cm2_s > 0]
        if len(ok) >= 2:
            out.arrhenius[model] = fit_arrhenius(
                ok,
                [out.diffusion[model][T].D_cm2_s for T in ok],
                [out.diffusion[model][T].D_err_cm2_s for T in ok],
                label=model,
                point_flags=[out.diffusion[model][T].flags for T in ok],
            )
    return out
