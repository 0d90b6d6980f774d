"""Read and validate a sweep definition (``SWEEP.toml``) and plan its runs.

Schema (paths are relative to the TOML file; see ``docs/driver.md``)::

    name = "lif-demo"                    # optional; default: the file's stem
    sweep_dir = "lif-demo"               # optional; default: <toml dir>/<name>
    temperatures_K = [900, 1100]
    seeds = [1, 2]
    structure = "structures/lif.data"    # or a [structures] table of several

    [models]
    mace = "models/lif_mace.pt"                       # TorchScript -> pair_style mlip/torch
    committee = ["a.pt", "b.pt"]                      # first drives, deviation from all
    lj = { pair_style = "lj/cut 6.0", pair_coeff = ["* * 0.01 2.0"] }   # classical

    [md]                                   # all optional
    dt_fs = 1.0
    n_equil = 1000
    n_prod = 10000
    ...

    [run]                                  # all optional
    lmp = "lmp"
    launcher = "mpirun -np {ranks}"
    timeout_s = 0
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionmd.driver.lammps_input import ENSEMBLES, THERMOSTATS, MDInputSpec
from ionmd.driver.potential import ModelSpec
from ionmd.driver.structure import read_type_map
from ionmd.errors import InputError
from ionmd.examples import is_builtin
from ionmd.tomlconfig import check_keys, check_table, key_error, read_toml

TOP_KEYS = {"name", "sweep_dir", "temperatures_K", "seeds", "models", "structure", "structures",
            "md", "run"}
MD_KEYS = {"dt_fs": float, "n_equil": int, "n_prod": int, "thermostat": str, "ensemble": str,
           "P_bar": float, "tdamp_fs": float, "pdamp_fs": float, "dump_every": int,
           "species": list, "restart_every": int, "thermo_every": int, "deviation_every": int}
RUN_KEYS = {"lmp": str, "launcher": str, "timeout_s": float}
RAW_MODEL_KEYS = {"pair_style", "pair_coeff", "commands", "path", "paths"}
STRUCTURE_KEYS = {"file", "source", "supercell", "a_A", "add", "remove", "seed", "types"}
NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass
class StructureEntry:
    """A structure of the sweep: an existing data file or a recipe for ``make_structure``."""

    name: str
    data_file: Path | None = None
    recipe: dict[str, Any] | None = None


@dataclass
class SweepConfig:
    """A validated sweep definition."""

    path: Path
    name: str
    sweep_dir: Path
    temperatures_K: list[float]
    seeds: list[int]
    models: dict[str, list[ModelSpec]]
    structures: list[StructureEntry]
    md: dict[str, Any] = field(default_factory=dict)
    lmp: str = ""
    launcher: str = "mpirun -np {ranks}"
    timeout_s: float = 0.0
    missing_models: dict[str, str] = field(default_factory=dict)


@dataclass
class RunPlan:
    """One point of the Cartesian product."""

    id: str
    model: str
    structure: str
    T_K: float
    seed: int
    dir: str




def _resolve(base: Path, value: Any, path: Path, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise key_error(path, key, f"expected a file path string, got {value!r}")
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _parse_models(path: Path, raw: Any, base: Path, allow_missing: bool
                  ) -> tuple[dict[str, list[ModelSpec]], dict[str, str]]:
    if not isinstance(raw, dict) or not raw:
        raise key_error(path, "models", "expected a non-empty table of name = model")
    models: dict[str, list[ModelSpec]] = {}
    missing: dict[str, str] = {}
    for name, value in raw.items():
        key = f"models.{name}"
        if not NAME_RE.match(name):
            raise key_error(path, key, "model names may use only letters, digits and _ . + -")
        if isinstance(value, dict):
            check_keys(path, value, RAW_MODEL_KEYS, key)
            if "path" in value or "paths" in value:
                value = value.get("paths", value.get("path"))
            else:
                style = value.get("pair_style")
                coeff = value.get("pair_coeff")
                if isinstance(coeff, str):
                    coeff = [coeff]
                if not isinstance(style, str) or not style.strip():
                    raise key_error(path, f"{key}.pair_style", "a raw model needs pair_style")
                if not coeff or not all(isinstance(c, str) for c in coeff):
                    raise key_error(path, f"{key}.pair_coeff", "a raw model needs pair_coeff lines")
                commands = value.get("commands", [])
                if isinstance(commands, str):
                    commands = [commands]
                models[name] = [ModelSpec(name=name, pair_style=style.strip(),
                                          pair_coeff=list(coeff), commands=list(commands))]
                continue
        paths = value if isinstance(value, list) else [value]
        if not paths:
            raise key_error(path, key, "empty list of model files")
        specs = []
        for i, p in enumerate(paths):
            model_path = _resolve(base, p, path, key).resolve()
            if not model_path.is_file():
                if not allow_missing:
                    raise key_error(path, key, f"model file '{model_path}' does not exist")
                missing[name] = str(model_path)
            specs.append(ModelSpec(name=name if i == 0 else f"{name}[{i}]", path=str(model_path)))
        models[name] = specs
    return models, missing


def _parse_structures(path: Path, data: dict, base: Path) -> list[StructureEntry]:
    if "structure" in data and "structures" in data:
        raise key_error(path, "structures", "give either 'structure' or 'structures', not both")
    if "structure" in data:
        stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(str(data["structure"])).stem) or "structure"
        raw = {stem: data["structure"]}
        key_of = {stem: "structure"}
    elif "structures" in data:
        raw = data["structures"]
        if not isinstance(raw, dict) or not raw:
            raise key_error(path, "structures", "expected a non-empty table of name = data file")
        key_of = {name: f"structures.{name}" for name in raw}
    else:
        raise key_error(path, "structure", "missing: give a LAMMPS data file or a [structures] table")
    entries = []
    for name, value in raw.items():
        key = key_of[name]
        if not NAME_RE.match(name):
            raise key_error(path, key, "structure names may use only letters, digits and _ . + -")
        if isinstance(value, dict):
            check_keys(path, value, STRUCTURE_KEYS, key)
            if "file" in value:
                if set(value) != {"file"}:
                    raise key_error(path, key, "'file' (a data file) excludes the recipe keys")
                value = value["file"]
            else:
                recipe = dict(value)
                if "source" in recipe and not is_builtin(recipe["source"]):
                    recipe["source"] = str(_resolve(base, recipe["source"], path, f"{key}.source"))
                entries.append(StructureEntry(name=name, recipe=recipe))
                continue
        data_file = _resolve(base, value, path, key)
        if not data_file.is_file():
            raise key_error(path, key, f"data file '{data_file}' does not exist")
        try:
            read_type_map(data_file)
        except InputError as exc:
            raise key_error(path, key, str(exc)) from None
        entries.append(StructureEntry(name=name, data_file=data_file.resolve()))
    return entries


def _parse_md(path: Path, raw: Any) -> dict[str, Any]:
    check_table(path, raw, MD_KEYS, "md")
    md: dict[str, Any] = {}
    for key, value in raw.items():
        kind = MD_KEYS[key]
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            md[key] = float(value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            md[key] = value
        elif kind is str and isinstance(value, str):
            md[key] = value.lower()
        elif kind is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            md[key] = value
        else:
            raise key_error(path, f"md.{key}", f"expected {kind.__name__}, got {value!r}")
    if md.get("thermostat", "nose-hoover") not in THERMOSTATS:
        raise key_error(path, "md.thermostat", f"unknown thermostat '{md['thermostat']}' "
                                           f"(use {' or '.join(THERMOSTATS)})")
    if md.get("ensemble", "nvt") not in ENSEMBLES:
        raise key_error(path, "md.ensemble", f"unknown ensemble '{md['ensemble']}' "
                                         f"(use {' or '.join(ENSEMBLES)})")
    for key in ("dt_fs", "dump_every", "restart_every", "thermo_every", "tdamp_fs", "pdamp_fs"):
        if key in md and not md[key] > 0:
            raise key_error(path, f"md.{key}", f"must be positive, got {md[key]}")
    for key in ("n_equil", "n_prod", "deviation_every"):
        if key in md and md[key] < 0:
            raise key_error(path, f"md.{key}", f"must be >= 0, got {md[key]}")
    return md


def default_lmp() -> str:
    """Return the LAMMPS executable: ``lmp`` next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "lmp"
    if beside.is_file():
        return str(beside)
    return shutil.which("lmp") or "lmp"


def load_sweep_config(path: str | Path, sweep_dir: str | Path | None = None,
                      allow_missing_models: bool = False) -> SweepConfig:
    """Read ``path`` (TOML) and validate it; every error names the key and the file.

    With ``allow_missing_models``, a missing model file is not an error: the runs
    of that model fail (with the reason) and the rest of the sweep runs.
    """
    path = Path(path)
    data = read_toml(path, f"sweep file '{path}' does not exist")
    base = path.resolve().parent
    check_keys(path, data, TOP_KEYS, "")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise key_error(path, "name", f"bad sweep name {name!r}")
    temps = data.get("temperatures_K")
    if not isinstance(temps, list) or not temps:
        raise key_error(path, "temperatures_K", "expected a non-empty list of temperatures in K")
    for i, t in enumerate(temps):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise key_error(path, f"temperatures_K[{i}]", f"temperature must be a positive number "
                                                      f"of kelvin, got {t!r}")
    if len(set(temps)) != len(temps):
        raise key_error(path, "temperatures_K", "a temperature is listed twice")
    seeds = data.get("seeds", [1])
    if not isinstance(seeds, list) or not seeds:
        raise key_error(path, "seeds", "expected a non-empty list of positive integers")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 < s < 2**31:
            raise key_error(path, f"seeds[{i}]", f"seed must be an integer in 1..2^31-1, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise key_error(path, "seeds", "a seed is listed twice")
    models, missing = _parse_models(path, data.get("models"), base, allow_missing_models)
    structures = _parse_structures(path, data, base)
    md = _parse_md(path, data.get("md", {}))
    run = check_table(path, data.get("run", {}), RUN_KEYS, "run")
    for key, kind in RUN_KEYS.items():
        if key in run and not isinstance(run[key], (kind, int) if kind is float else kind):
            raise key_error(path, f"run.{key}", f"expected {kind.__name__}, got {run[key]!r}")
    if "launcher" in run and "{ranks}" not in run["launcher"]:
        raise key_error(path, "run.launcher", "must contain {ranks}, e.g. 'mpirun -np {ranks}'")
    if sweep_dir is None:
        raw_dir = data.get("sweep_dir", name)
        sweep_dir = _resolve(base, raw_dir, path, "sweep_dir")
    config = SweepConfig(
        path=path.resolve(), name=name, sweep_dir=Path(sweep_dir).resolve(),
        temperatures_K=[float(t) for t in temps], seeds=list(seeds), models=models,
        structures=structures, md=md, lmp=run.get("lmp") or default_lmp(),
        launcher=run.get("launcher", "mpirun -np {ranks}"),
        timeout_s=float(run.get("timeout_s", 0.0)), missing_models=missing,
    )
    _check_md_against_structures(config)
    return config


def _check_md_against_structures(config: SweepConfig) -> None:
    """Validate [md] with the atom types of every data-file structure."""
    for entry in config.structures:
        if entry.data_file is None:
            continue
        type_map = read_type_map(entry.data_file)
        symbols = [type_map[i] for i in sorted(type_map)]
        spec = MDInputSpec(data_file=str(entry.data_file), symbols=symbols,
                           models=next(iter(config.models.values())), T_K=1.0,
                           **{k: v for k, v in config.md.items()})
        try:
            spec.validate()
        except InputError as exc:
            raise InputError(f"{config.path}: [md] with structure '{entry.name}': {exc}") from None


def format_T(T_K: float) -> str:
    """Return ``900K`` (or ``912.5K``) for directory names and run ids."""
    return f"{T_K:g}K"


def plan_runs(config: SweepConfig) -> list[RunPlan]:
    """Return the Cartesian product structures x models x temperatures x seeds, in order."""
    runs = []
    many = len(config.structures) > 1
    for entry in config.structures:
        for model in config.models:
            for T in config.temperatures_K:
                for seed in config.seeds:
                    parts = ([entry.name] if many else []) + [model, format_T(T), f"seed{seed}"]
                    run_id = "/".join(parts)
                    runs.append(RunPlan(id=run_id, model=model, structure=entry.name, T_K=T,
                                        seed=seed, dir=f"runs/{run_id}"))
    return runs
