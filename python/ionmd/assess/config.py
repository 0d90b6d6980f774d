"""Read and validate an ``ionmd assess`` definition (TOML; schema in docs/assess.md).

Example::

    data = "labelled.extxyz"            # ionmd label output (energy, forces)
    split_seed = 0                      # fixed held-out split; member seeds split_seed + k

    [learning]
    sizes = [25, 50, 100, 300, 1000]    # training frames, capped by the data
    seeds = 3                           # members (training seeds) per size

    [locality]
    candidate = "small"                 # default: the first candidate
    cutoffs_A = [3.0, 4.0, 5.0, 6.0, 7.0]
    layers = [1, 2]
    seeds = 1

    [candidates.small]                  # a MACE fit recipe
    size = "small"                      # ionmd.models.fit.MACE_SIZES base
    epochs = 200
    r_max = 5.0                         # any of MACE_OPTIONS overrides the base

    [transport]                         # optional: MD sweep through the pair style
    reference = "ref"
    fitted = ["small"]                  # candidates exported and run beside the models
    structure = "cell.data"
    temperatures_K = [900, 1100]
    seeds = [1, 2]
    n_ranks = 2
    [transport.models]                  # ionmd sweep [models] schema
    ref = "models/reference.pt"
    [transport.md]                      # ionmd sweep [md] schema
    n_prod = 20000
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.models.fit import MACE_SIZES
from ionmd.tomlconfig import check_table, key_error, read_toml

TOP_KEYS = {"data", "split_seed", "learning", "locality", "candidates", "transport"}
LEARNING_KEYS = {"sizes", "seeds"}
LOCALITY_KEYS = {"candidate", "cutoffs_A", "layers", "seeds", "n_train"}
CANDIDATE_KEYS = {"size", "epochs", "dtype", "batch_size"}
MACE_OPTIONS = set(MACE_SIZES["small"]) - {"max_num_epochs"} | {"num_interactions", "num_channels",
                                                                  "max_L", "num_cutoff_basis"}
"""mace_run_train options a candidate may set (passed as ``--key value``, overriding the size's)."""
TRANSPORT_KEYS = {"reference", "fitted", "structure", "temperatures_K", "seeds", "models", "md",
                  "n_ranks", "species", "export_dtype"}
DEFAULT_LAYERS = 2
"""mace_run_train's default number of message-passing layers (``--num_interactions``)."""


@dataclass
class Candidate:
    """A MACE fit recipe: a size of :data:`ionmd.models.fit.MACE_SIZES` plus overrides."""

    name: str
    size: str = "small"
    epochs: int | None = None
    dtype: str = "float64"
    batch_size: int = 5
    options: dict[str, str] = field(default_factory=dict)

    @property
    def r_max_A(self) -> float:
        """The cutoff of the recipe (Å)."""
        return float(self.options.get("r_max", MACE_SIZES[self.size]["r_max"]))

    @property
    def layers(self) -> int:
        """Message-passing layers of the recipe."""
        return int(self.options.get("num_interactions", DEFAULT_LAYERS))

    def with_options(self, **options: Any) -> Candidate:
        """A copy with ``options`` overriding (values written as mace_run_train strings)."""
        merged = dict(self.options)
        merged.update({k: str(v) for k, v in options.items()})
        return Candidate(self.name, self.size, self.epochs, self.dtype, self.batch_size, merged)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"name": self.name, "size": self.size, "epochs": self.epochs, "dtype": self.dtype,
                "batch_size": self.batch_size, "options": dict(self.options),
                "r_max_A": self.r_max_A, "layers": self.layers}


@dataclass
class AssessConfig:
    """A validated ``ionmd assess`` definition (paths resolved against the TOML's folder)."""

    path: Path
    data: Path
    candidates: list[Candidate]
    split_seed: int = 0
    sizes: list[int] = field(default_factory=lambda: [25, 50, 100, 300, 1000])
    learning_seeds: int = 3
    locality_candidate: str | None = None
    cutoffs_A: list[float] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)
    locality_seeds: int = 1
    locality_n_train: int | None = None
    transport: dict[str, Any] | None = None

    def candidate(self, name: str) -> Candidate:
        """The candidate called ``name``."""
        for c in self.candidates:
            if c.name == name:
                return c
        raise InputError(f"{self.path}: no candidate {name!r} (have: "
                         f"{', '.join(c.name for c in self.candidates)})")


def _pos_int_list(path: Path, value: Any, key: str) -> list[int]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise key_error(path, key, f"expected a non-empty list of positive integers, got {value!r}")
    return sorted(set(value))


def _pos_int(path: Path, value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise key_error(path, key, f"expected a positive integer, got {value!r}")
    return value


def _candidate(path: Path, name: str, raw: Any) -> Candidate:
    table = check_table(path, raw, CANDIDATE_KEYS | MACE_OPTIONS, f"candidates.{name}")
    size = table.get("size", "small")
    if size not in MACE_SIZES:
        raise key_error(path, f"candidates.{name}.size", f"{size!r}: choose one of {', '.join(MACE_SIZES)}")
    epochs = table.get("epochs")
    if epochs is not None:
        epochs = _pos_int(path, epochs, f"candidates.{name}.epochs")
    dtype = table.get("dtype", "float64")
    if dtype not in ("float32", "float64"):
        raise key_error(path, f"candidates.{name}.dtype", f"{dtype!r}: choose float32 or float64")
    batch = _pos_int(path, table.get("batch_size", 5), f"candidates.{name}.batch_size")
    options = {}
    for key in sorted(MACE_OPTIONS & set(table)):
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, (int, float, str, list)):
            raise key_error(path, f"candidates.{name}.{key}", f"expected a number, string or list, got {v!r}")
        options[key] = str(v)
    cand = Candidate(name, size, epochs, dtype, batch, options)
    if cand.r_max_A <= 0:
        raise key_error(path, f"candidates.{name}.r_max", f"must be positive, got {cand.r_max_A}")
    return cand


def _transport(path: Path, raw: Any, names: list[str]) -> dict[str, Any]:
    table = dict(check_table(path, raw, TRANSPORT_KEYS, "transport"))
    models = table.get("models") or {}
    if not isinstance(models, dict):
        raise key_error(path, "transport.models", "expected a table of name = model (ionmd sweep schema)")
    fitted = table.get("fitted", [])
    if not isinstance(fitted, list) or not all(isinstance(f, str) for f in fitted):
        raise key_error(path, "transport.fitted", f"expected a list of candidate names, got {fitted!r}")
    for f in fitted:
        if f not in names:
            raise key_error(path, "transport.fitted", f"{f!r} is not a candidate (have: {', '.join(names)})")
        if f in models:
            raise key_error(path, "transport.fitted", f"{f!r} is also a name in [transport.models]")
    all_models = list(models) + fitted
    ref = table.get("reference")
    if ref not in all_models:
        raise key_error(path, "transport.reference", f"{ref!r} is not one of the transport models "
                    f"({', '.join(all_models) or 'none given'})")
    if len(all_models) < 2:
        raise key_error(path, "transport.models", "the transport check needs the reference and at least one "
                    "candidate model")
    if not isinstance(table.get("structure"), str):
        raise key_error(path, "transport.structure", "expected the path of a LAMMPS data file")
    table["structure"] = str((path.parent / table["structure"]).resolve())
    temps = table.get("temperatures_K")
    if (not isinstance(temps, list) or len(temps) < 2
            or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in temps)):
        raise key_error(path, "transport.temperatures_K", "expected at least two positive temperatures "
                    "(the Arrhenius fits need two)")
    table["seeds"] = _pos_int_list(path, table.get("seeds", [1]), "transport.seeds")
    table["n_ranks"] = _pos_int(path, table.get("n_ranks", 1), "transport.n_ranks")
    table["fitted"] = fitted
    table["models"] = {k: _resolve_model(path, k, v) for k, v in models.items()}
    md = table.get("md") or {}
    if not isinstance(md, dict):
        raise key_error(path, "transport.md", "expected a table (ionmd sweep [md] schema)")
    table["md"] = md
    return table


def _resolve_model(path: Path, name: str, value: Any) -> Any:
    """Model paths relative to the assess TOML (the sweep TOML is written elsewhere)."""
    def res(p: Any) -> Any:
        return str((path.parent / p).resolve()) if isinstance(p, str) else p

    if isinstance(value, str):
        return res(value)
    if isinstance(value, list):
        return [res(v) for v in value]
    if isinstance(value, dict):
        out = dict(value)
        for key in ("path", "paths"):
            if key in out:
                out[key] = [res(v) for v in out[key]] if isinstance(out[key], list) else res(out[key])
        return out
    raise key_error(path, f"transport.models.{name}", f"expected a path, a list of paths or a table, got {value!r}")


def load_assess_config(path: str | Path) -> AssessConfig:
    """Read and validate an assess TOML.

    Raises
    ------
    InputError
        The file is missing or not TOML, or a key is unknown or has a bad value (named).
    """
    path = Path(path)
    raw = read_toml(path, f"assess definition {path} does not exist")
    check_table(path, raw, TOP_KEYS, "")
    if not isinstance(raw.get("data"), str):
        raise key_error(path, "data", "expected the path of a labelled extended XYZ file")
    data = (path.parent / raw["data"]).resolve()
    if not data.is_file():
        raise key_error(path, "data", f"{data} does not exist")
    cands_raw = raw.get("candidates")
    if not isinstance(cands_raw, dict) or not cands_raw:
        raise key_error(path, "candidates", "expected at least one [candidates.NAME] fit recipe")
    candidates = [_candidate(path, n, v) for n, v in cands_raw.items()]
    split_seed = raw.get("split_seed", 0)
    if not isinstance(split_seed, int) or isinstance(split_seed, bool):
        raise key_error(path, "split_seed", f"expected an integer, got {split_seed!r}")
    learning = check_table(path, raw.get("learning", {}), LEARNING_KEYS, "learning")
    cfg = AssessConfig(path, data, candidates, split_seed)
    cfg.sizes = _pos_int_list(path, learning.get("sizes", cfg.sizes), "learning.sizes")
    cfg.learning_seeds = _pos_int(path, learning.get("seeds", cfg.learning_seeds), "learning.seeds")
    loc = check_table(path, raw.get("locality", {}), LOCALITY_KEYS, "locality")
    cfg.locality_candidate = loc.get("candidate", candidates[0].name)
    cfg.candidate(cfg.locality_candidate)
    cuts = loc.get("cutoffs_A", [])
    if not isinstance(cuts, list) or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in cuts):
        raise key_error(path, "locality.cutoffs_A", f"expected a list of positive cutoffs in Å, got {cuts!r}")
    cfg.cutoffs_A = sorted({float(c) for c in cuts})
    cfg.layers = _pos_int_list(path, loc["layers"], "locality.layers") if "layers" in loc else []
    cfg.locality_seeds = _pos_int(path, loc.get("seeds", 1), "locality.seeds")
    if "n_train" in loc:
        cfg.locality_n_train = _pos_int(path, loc["n_train"], "locality.n_train")
    if "transport" in raw:
        cfg.transport = _transport(path, raw["transport"], [c.name for c in candidates])
    return cfg
