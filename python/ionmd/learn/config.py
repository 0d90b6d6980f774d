"""Read and validate an active-learning definition (``LEARN.toml``).

Schema (paths are relative to the TOML file; see ``docs/learn.md``)::

    name = "lif-al"                  # optional; default: the file's stem
    work_dir = "lif-al"              # optional; default: <toml dir>/<name>

    [data]
    initial = "data/lif.extxyz"      # labelled frames (energy, forces)
    initial_count = 50               # optional: use this many, drawn at random
    test = "data/heldout.extxyz"     # optional: labelled held-out frames
    test_count = 100                 # optional

    [labeller]
    calculator = "chgnet"            # as `ionmd label --calculator`

    [model]
    family = "mace"                  # or "deepmd"
    size = "tiny"                    # tiny | small | medium
    committee = 3
    epochs = 20                      # first training (MACE); deepmd: steps
    warm_epochs = 10                 # later iterations (warm start)
    warm_start = true

    [explore]
    structure = "lif.data"           # or [explore.structures] as in a sweep
    temperatures_K = [1000]
    seeds = [1, 2]
    n_equil = 500
    n_prod = 5000
    every = 20                       # steps between dumped frames and deviation lines

    [select]
    lo_eV_A = 0.05
    hi_eV_A = 0.30
    budget = 20

    [stop]
    accurate_fraction = 0.95
    max_iterations = 6
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionmd.examples import is_builtin
from ionmd.tomlconfig import check_keys, check_table, read_toml
from ionmd.tomlconfig import key_error as _fail

FAMILIES = ("mace", "deepmd")
SIZES = ("tiny", "small", "medium", "fast")
METHODS = ("spread", "random", "first")
THERMOSTATS = ("nose-hoover", "csvr")
ENSEMBLES = ("nvt", "npt")

# key -> (type, default); None default = optional, REQUIRED = must be given.
REQUIRED = object()
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "data": {
        "initial": (str, REQUIRED),
        "initial_count": (int, None),
        "initial_seed": (int, 0),
        "test": (str, None),
        "test_count": (int, None),
        "elements": (list, None),
    },
    "labeller": {"calculator": (str, "chgnet")},
    "model": {
        "family": (str, "mace"),
        "size": (str, "tiny"),
        "committee": (int, 3),
        "epochs": (int, None),
        "warm_epochs": (int, None),
        "warm_start": (bool, True),
        "seed": (int, 0),
        "dtype": (str, "float64"),
        "export_dtype": (str, "float32"),
        "batch_size": (int, 5),
        "dp_env": (str, None),
    },
    "explore": {
        "structure": (str, None),
        "structures": (dict, None),
        "temperatures_K": (list, REQUIRED),
        "seeds": (list, [1]),
        "dt_fs": (float, 1.0),
        "n_equil": (int, 200),
        "n_prod": (int, 2000),
        "every": (int, 20),
        "thermostat": (str, "csvr"),
        "ensemble": (str, "nvt"),
        "P_bar": (float, None),
        "tdamp_fs": (float, None),
        "pdamp_fs": (float, None),
        "ranks": (int, 1),
        "lmp": (str, None),
        "timeout_s": (float, 0.0),
    },
    "select": {
        "lo_eV_A": (float, REQUIRED),
        "hi_eV_A": (float, REQUIRED),
        "budget": (int, 20),
        "method": (str, "spread"),
        "seed": (int, 0),
    },
    "stop": {"accurate_fraction": (float, 0.95), "max_iterations": (int, 5)},
}
TOP_KEYS = {"name", "work_dir", *SCHEMA}
REQUIRED_TABLES = ("data", "explore", "select")


@dataclass
class LearnConfig:
    """A validated active-learning definition.

    Attributes
    ----------
    path
        The TOML file (absolute).
    name, work_dir
        Run name and the directory holding ``learn_state.json`` and ``iter.NNN/``.
    data, labeller, model, explore, select, stop
        The tables with defaults filled in and paths made absolute.
    digest
        SHA-256 of the TOML text (a resumed run warns if it changed).
    """

    path: Path
    name: str
    work_dir: Path
    data: dict[str, Any] = field(default_factory=dict)
    labeller: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    explore: dict[str, Any] = field(default_factory=dict)
    select: dict[str, Any] = field(default_factory=dict)
    stop: dict[str, Any] = field(default_factory=dict)
    digest: str = ""


def _typed(path: Path, key: str, value: Any, kind: type) -> Any:
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, key, f"expected a number, got {value!r}")
        return float(value)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _fail(path, key, f"expected an integer, got {value!r}")
    if not isinstance(value, kind):
        raise _fail(path, key, f"expected {kind.__name__}, got {value!r}")
    return value


def _table(path: Path, data: dict, name: str) -> dict[str, Any]:
    schema = SCHEMA[name]
    raw = check_table(path, data.get(name, {}), schema, name)
    out: dict[str, Any] = {}
    for key, (kind, default) in schema.items():
        if key in raw:
            out[key] = _typed(path, f"{name}.{key}", raw[key], kind)
        elif default is REQUIRED:
            raise _fail(path, f"{name}.{key}", "is required")
        else:
            out[key] = default
    return out


def _file(path: Path, base: Path, value: str, key: str) -> Path:
    resolved = (base / value).resolve()
    if not resolved.is_file():
        raise _fail(path, key, f"file '{value}' does not exist (looked for {resolved})")
    return resolved


def _positive(path: Path, table: dict, name: str, keys: tuple[str, ...], strict: bool = True
              ) -> None:
    for key in keys:
        value = table.get(key)
        if value is None:
            continue
        if (strict and not value > 0) or (not strict and value < 0):
            raise _fail(path, f"{name}.{key}",
                        f"must be {'positive' if strict else '>= 0'}, got {value!r}")


def _check_choice(path: Path, key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail(path, key, f"{value!r} is not one of {', '.join(choices)}")


def _validate_data(path: Path, base: Path, data: dict) -> None:
    data["initial"] = _file(path, base, data["initial"], "data.initial")
    if data["test"] is not None:
        data["test"] = _file(path, base, data["test"], "data.test")
    _positive(path, data, "data", ("initial_count", "test_count"))
    if data["initial_count"] is not None and data["initial_count"] < 3:
        raise _fail(path, "data.initial_count", "need at least 3 frames to train")


def _validate_model(path: Path, model: dict) -> None:
    _check_choice(path, "model.family", model["family"], FAMILIES)
    _check_choice(path, "model.size", model["size"], SIZES)
    _check_choice(path, "model.dtype", model["dtype"], ("float32", "float64"))
    _check_choice(path, "model.export_dtype", model["export_dtype"], ("float32", "float64"))
    if model["committee"] < 2:
        raise _fail(path, "model.committee",
                    f"a committee needs at least 2 models for a deviation, got {model['committee']}")
    _positive(path, model, "model", ("epochs", "warm_epochs", "batch_size"))


def _validate_explore(path: Path, base: Path, explore: dict) -> None:
    if (explore["structure"] is None) == (explore["structures"] is None):
        raise _fail(path, "explore.structure",
                    "give exactly one of 'structure' (a data file) or an [explore.structures] table")
    if explore["structure"] is not None:
        explore["structure"] = _file(path, base, explore["structure"], "explore.structure")
    else:
        resolved = {}
        for name, entry in explore["structures"].items():
            if isinstance(entry, str):
                resolved[name] = str(_file(path, base, entry, f"explore.structures.{name}"))
            elif isinstance(entry, dict):
                recipe = dict(entry)
                if "source" in recipe and not is_builtin(recipe["source"]):
                    # the sweep TOML is written elsewhere: a file must not stay relative to this one
                    recipe["source"] = str(_file(path, base, str(recipe["source"]),
                                                 f"explore.structures.{name}.source"))
                resolved[name] = recipe
            else:
                raise _fail(path, f"explore.structures.{name}",
                            "expected a data file or a structure recipe table")
        explore["structures"] = resolved
    temps = explore["temperatures_K"]
    if not temps:
        raise _fail(path, "explore.temperatures_K", "expected a non-empty list of temperatures")
    for i, t in enumerate(temps):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise _fail(path, f"explore.temperatures_K[{i}]",
                        f"temperature must be a positive number of kelvin, got {t!r}")
    for i, s in enumerate(explore["seeds"]):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 < s < 2**31:
            raise _fail(path, f"explore.seeds[{i}]", f"seed must be an integer in 1..2^31-1, got {s!r}")
    _positive(path, explore, "explore", ("dt_fs", "n_prod", "every", "ranks", "tdamp_fs", "pdamp_fs"))
    _positive(path, explore, "explore", ("n_equil", "timeout_s"), strict=False)
    _check_choice(path, "explore.thermostat", explore["thermostat"], THERMOSTATS)
    _check_choice(path, "explore.ensemble", explore["ensemble"], ENSEMBLES)
    if explore["n_prod"] < explore["every"]:
        raise _fail(path, "explore.n_prod",
                    f"{explore['n_prod']} steps give no frame at every = {explore['every']}")


def _validate_select(path: Path, select: dict) -> None:
    lo, hi = select["lo_eV_A"], select["hi_eV_A"]
    if not lo > 0:
        raise _fail(path, "select.lo_eV_A", f"must be positive, got {lo}")
    if not hi > lo:
        raise _fail(path, "select.hi_eV_A", f"must be larger than select.lo_eV_A = {lo}, got {hi}")
    _positive(path, select, "select", ("budget",))
    _check_choice(path, "select.method", select["method"], METHODS)


def load_learn_config(path: str | Path) -> LearnConfig:
    """Read ``path`` (TOML) and validate it; every error names the file and the key.

    Raises
    ------
    InputError
        For a missing or invalid file, an unknown or missing key, a value of the
        wrong type or range, or a data/structure file that does not exist.
    """
    path = Path(path)
    data = read_toml(path, f"learning config '{path}' does not exist")
    text = path.read_text()
    check_keys(path, data, TOP_KEYS)
    for name in REQUIRED_TABLES:
        if name not in data:
            raise _fail(path, name, f"the [{name}] table is required")
    base = path.resolve().parent
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise _fail(path, "name", f"expected a non-empty string, got {name!r}")
    work_dir = data.get("work_dir", name)
    if not isinstance(work_dir, str):
        raise _fail(path, "work_dir", f"expected a path, got {work_dir!r}")
    tables = {t: _table(path, data, t) for t in SCHEMA}
    _validate_data(path, base, tables["data"])
    _validate_model(path, tables["model"])
    _validate_explore(path, base, tables["explore"])
    _validate_select(path, tables["select"])
    stop = tables["stop"]
    if not 0 < stop["accurate_fraction"] <= 1:
        raise _fail(path, "stop.accurate_fraction",
                    f"must be in (0, 1], got {stop['accurate_fraction']}")
    _positive(path, stop, "stop", ("max_iterations",))
    return LearnConfig(path=path.resolve(), name=name, work_dir=(base / work_dir).resolve(),
                       digest=hashlib.sha256(text.encode()).hexdigest(), **tables)
