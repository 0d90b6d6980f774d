"""The sweep directory (shared contract 2): one typed reader and writer of its state files.

A sweep directory holds ``sweep.json`` (the index: ``{"name", "updated_at",
"runs": [...]}``), ``sweep.csv`` (its scalar columns) and, per run,
``runs/<model>/<T>K/seed<k>/status.json``, the source of truth for that run.
Every package that reads a sweep goes through :func:`read_index` and
:class:`RunRecord`, instead of parsing the JSON itself.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.jsonfile import read_json, write_json_atomic

STATUSES = ("pending", "running", "done", "failed", "interrupted")
CSV_COLUMNS = ("id", "model", "structure", "T_K", "seed", "dir", "status", "dump", "data_file",
               "dt_fs", "dump_every", "species", "attempts", "wall_s", "error")
INDEX_FILE = "sweep.json"
STATUS_FILE = "status.json"
REQUIRED_KEYS = ("id", "model", "T_K", "seed", "dir")


def now_utc() -> str:
    """The current UTC time, ISO 8601 with milliseconds (the timestamps of the state files)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class RunRecord:
    """A run of the sweep as stored in ``status.json`` and indexed in ``sweep.json``."""

    id: str
    model: str
    T_K: float
    seed: int
    dir: str
    structure: str = ""
    status: str = "pending"
    dump: str = ""
    data_file: str = ""
    dt_fs: float = 1.0
    dump_every: int = 100
    species: list[str] | None = None
    type_map: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    wall_s: float = 0.0
    resumed_from_step: int | None = None
    host: str | None = None
    group: int | None = None
    gpu: int | None = None
    model_sha256: dict[str, str] = field(default_factory=dict)  # model file -> hash, per attempt
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Build a record from a ``status.json`` or index dict (unknown keys are ignored).

        Raises ``TypeError`` naming the missing keys; :func:`read_index` and
        :func:`read_status` turn it into an :class:`InputError` naming the file.
        """
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise TypeError(f"missing key(s) {', '.join(repr(k) for k in missing)}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def type_map_int(self) -> dict[int, str]:
        """The atom-type map with integer keys."""
        return {int(k): str(v) for k, v in self.type_map.items()}


@dataclass
class SweepIndex:
    """The parsed ``sweep.json`` of a sweep directory."""

    sweep_dir: Path
    name: str
    runs: list[RunRecord]
    updated_at: str = ""

    def with_status(self, *statuses: str) -> list[RunRecord]:
        """The runs whose status is one of ``statuses``, in index order."""
        return [r for r in self.runs if r.status in statuses]

    def by_id(self) -> dict[str, RunRecord]:
        """The runs by id."""
        return {r.id: r for r in self.runs}

    def run_dir(self, run: RunRecord) -> Path:
        """The directory of ``run``."""
        return self.sweep_dir / run.dir


def index_path(sweep_dir: str | Path) -> Path:
    """The ``sweep.json`` of a sweep directory."""
    return Path(sweep_dir) / INDEX_FILE


def read_index_json(sweep_dir: str | Path) -> dict[str, Any]:
    """The raw ``sweep.json`` of a sweep directory: a dict with a ``runs`` list (entries unchecked).

    For readers that tolerate partial run entries (analysis of hand-made sweeps);
    :func:`read_index` builds typed :class:`RunRecord` objects from it. Raises
    :class:`InputError` naming the directory or the file when it is missing, not
    valid JSON, unreadable or has no ``runs`` list.
    """
    sweep_dir = Path(sweep_dir)
    path = index_path(sweep_dir)
    if not path.is_file():
        raise InputError(f"'{sweep_dir}' is not a sweep directory: it has no {INDEX_FILE}")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise InputError(f"'{path}' has no 'runs' list")
    return data


def read_index(sweep_dir: str | Path) -> SweepIndex:
    """Read ``sweep.json``; raise :class:`InputError` naming the file and the bad entry."""
    sweep_dir = Path(sweep_dir)
    path = index_path(sweep_dir)
    data = read_index_json(sweep_dir)
    runs = []
    for i, entry in enumerate(data["runs"]):
        label = entry.get("id", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        if not isinstance(entry, dict):
            raise InputError(f"'{path}' run {label} is not a JSON object")
        try:
            runs.append(RunRecord.from_dict(entry))
        except TypeError as exc:
            raise InputError(f"'{path}' run '{label}': {exc}") from None
    return SweepIndex(sweep_dir=sweep_dir, name=str(data.get("name", sweep_dir.name)), runs=runs,
                      updated_at=str(data.get("updated_at", "")))


def write_index(sweep_dir: Path, name: str, runs: list[RunRecord]) -> None:
    """Write ``sweep.json`` and ``sweep.csv`` (shared contract 2) atomically."""
    write_json_atomic(index_path(sweep_dir),
                      {"name": name, "updated_at": now_utc(),
                       "runs": [{k: v for k, v in r.to_dict().items() if k != "history"}
                                for r in runs]})
    tmp = sweep_dir / f"sweep.csv.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in runs:
            row = r.to_dict()
            row["species"] = " ".join(r.species) if r.species else "all"
            writer.writerow([("" if row[c] is None else row[c]) for c in CSV_COLUMNS])
    os.replace(tmp, sweep_dir / "sweep.csv")


def status_path(sweep_dir: Path, run: RunRecord) -> Path:
    """Return the ``status.json`` path of ``run``."""
    return sweep_dir / run.dir / STATUS_FILE


def save_status(sweep_dir: Path, run: RunRecord) -> None:
    """Write ``run``'s ``status.json`` atomically."""
    path = status_path(sweep_dir, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, run.to_dict())


def read_status(path: Path, run_id: str | None = None) -> RunRecord:
    """Read a run's ``status.json``; raise :class:`InputError` naming the file if it is bad.

    A status file that cannot be read is never taken as "not run yet": that would
    silently redo (and overwrite) a run that may have finished. With ``run_id``,
    the file must hold that run.
    """
    label = f" of run {run_id}" if run_id else ""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        record = RunRecord.from_dict(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise InputError(
            f"{path}: status file{label} is unreadable or corrupt ({exc}); cannot tell "
            "whether the run finished, so it is not rerun. Repair the file, or delete it to "
            "rerun the run from scratch") from None
    if (run_id is not None and record.id != run_id) or record.status not in STATUSES:
        raise InputError(
            f"{path}: status file holds run '{record.id}' with status '{record.status}', "
            f"expected run '{run_id or record.id}' with one of {', '.join(STATUSES)}; repair "
            "the file, or delete it to rerun the run from scratch")
    return record
