"""The state of a sweep directory: which runs exist, which to run, and how each continues.

Everything here reads or writes files of the sweep directory (shared contract 2)
through :mod:`ionmd.driver.sweepdir` and decides from them; nothing starts a
process. :func:`prepare_sweep` opens (or creates) a sweep and returns the runs
to do, :func:`resume_point` says from which restart file one run continues,
:func:`mark_interrupted` and :func:`summarize` close a sweep.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ionmd.driver.lammps_input import DUMP_FILE
from ionmd.driver.runner import busy_message, latest_restart, run_busy
from ionmd.driver.structure import make_structure, read_type_map
from ionmd.driver.sweep_config import RunPlan, SweepConfig, plan_runs
from ionmd.driver.sweepdir import (
    STATUSES,
    RunRecord,
    now_utc,
    read_status,
    save_status,
    status_path,
    write_index,
)
from ionmd.errors import InputError
from ionmd.filehash import file_sha256


@dataclass
class SweepSummary:
    """Counts of run states at the end of a sweep."""

    sweep_dir: str
    n_runs: int
    done: int
    failed: int
    pending: int
    interrupted: int
    skipped_done: int
    wall_s: float

    def to_json(self) -> str:
        """Return the summary as JSON."""
        return json.dumps(asdict(self), indent=2)


def status_counts(runs: list[RunRecord]) -> dict[str, int]:
    """The number of runs in each of :data:`~ionmd.driver.sweepdir.STATUSES`."""
    counts = {s: 0 for s in STATUSES}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts


def summarize(config: SweepConfig, runs: list[RunRecord], skipped_done: int, wall_s: float
              ) -> SweepSummary:
    """The :class:`SweepSummary` of ``runs`` (``skipped_done`` were done before this call)."""
    counts = status_counts(runs)
    return SweepSummary(sweep_dir=str(config.sweep_dir), n_runs=len(runs), done=counts["done"],
                        failed=counts["failed"], pending=counts["pending"],
                        interrupted=counts["interrupted"], skipped_done=skipped_done,
                        wall_s=round(wall_s, 3))


def _prepare_structures(config: SweepConfig) -> dict[str, Path]:
    """Copy (or build) every structure into ``<sweep_dir>/structures``; return name -> path."""
    out = config.sweep_dir / "structures"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entry in config.structures:
        target = out / f"{entry.name}.data"
        if entry.data_file is not None:
            if not target.exists() or target.read_bytes() != entry.data_file.read_bytes():
                target.write_bytes(entry.data_file.read_bytes())
        elif not target.exists():
            recipe = dict(entry.recipe or {})
            source = recipe.pop("source", None)
            try:
                make_structure(target, source=source, **recipe)
            except TypeError as exc:
                raise InputError(f"{config.path}: key 'structures.{entry.name}': {exc}") from None
        paths[entry.name] = target
    return paths


def _record_for(plan: RunPlan, config: SweepConfig, data_files: dict[str, Path]) -> RunRecord:
    data_file = data_files[plan.structure]
    type_map = read_type_map(data_file)
    return RunRecord(
        id=plan.id, model=plan.model, structure=plan.structure, T_K=plan.T_K, seed=plan.seed,
        dir=plan.dir, dump=f"{plan.dir}/{DUMP_FILE}",
        data_file=str(data_file.relative_to(config.sweep_dir)),
        dt_fs=float(config.md.get("dt_fs", 1.0)), dump_every=int(config.md.get("dump_every", 100)),
        species=list(config.md.get("species") or [type_map[i] for i in sorted(type_map)]),
        type_map={str(k): v for k, v in type_map.items()},
        created_at=now_utc(),
    )


def prepare_sweep(config: SweepConfig, resume: bool = False, retry_failed: bool = False
                  ) -> tuple[list[RunRecord], list[str]]:
    """Create or reopen the sweep directory; return all runs and the ids to run, in order.

    A new sweep refuses an existing ``sweep.json`` (use ``resume``). On resume, each
    run's ``status.json`` decides: done runs are skipped, running or interrupted ones
    resume from their last restart file, failed ones rerun only with ``retry_failed``
    (they keep the status ``failed`` until they start, so that :func:`resume_point`
    knows the attempt is a retry).
    """
    sweep_dir = config.sweep_dir
    if (sweep_dir / "sweep.json").exists() and not resume:
        raise InputError(f"sweep directory '{sweep_dir}' already holds a sweep: rerun with "
                         "--resume (or choose another sweep_dir)")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    data_files = _prepare_structures(config)
    runs: list[RunRecord] = []
    todo: list[str] = []
    changed: list[RunRecord] = []
    hashes = {name: model_hashes(config, name) for name in config.models}
    busy: list[str] = []
    for plan in plan_runs(config):
        fresh = _record_for(plan, config, data_files)
        path = status_path(sweep_dir, fresh)
        record = fresh
        if resume and path.is_file():
            record = read_status(path, fresh.id)
        if record.status != "done" and run_busy(path.parent):
            busy.append(busy_message(path.parent, record.id))
        if record.status == "done":
            if model_changed(record, hashes[record.model]):
                changed.append(record)
        elif record.status == "failed" and not retry_failed:
            pass
        else:
            if record.status == "failed":
                record.error = None
            todo.append(record.id)
        if record.status != "done" and record.status != "failed":
            record.status = "pending" if record.attempts == 0 else "interrupted"
        runs.append(record)
    if busy:
        raise InputError(f"{sweep_dir}: cannot resume: " + "; ".join(busy))
    if changed:
        files = sorted({f for r in changed for f, h in r.model_sha256.items()
                        if hashes[r.model].get(f) != h})
        raise InputError(
            f"{sweep_dir}: model file(s) {', '.join(files)} changed since run(s) "
            f"{', '.join(r.id for r in changed)} finished with them; resuming would mix two "
            "models in one sweep. Move those run directories away to rerun them with the new "
            "file, or start a new sweep_dir")
    for record in runs:
        save_status(sweep_dir, record)
    write_index(sweep_dir, config.name, runs)
    return runs, todo


def model_changed(run: RunRecord, hashes: dict[str, str]) -> bool:
    """Whether ``run`` ran with model files other than those of ``hashes`` (file -> SHA-256).

    False for a run that has not run yet, or that uses no model file.
    """
    return bool(run.model_sha256) and run.model_sha256 != hashes


def model_hashes(config: SweepConfig, model: str) -> dict[str, str]:
    """SHA-256 of each existing file of ``model`` (raw pair styles have none): file -> hash."""
    return {str(m.path): file_sha256(m.path) for m in config.models[model]
            if m.path is not None and Path(m.path).is_file()}


def resume_point(run: RunRecord, run_dir: Path, hashes: dict[str, str]) -> tuple[str, int] | None:
    """The restart file (and step) an earlier attempt of ``run`` continues from, or None.

    The same probe serves ``--resume`` (an interrupted or still-running attempt) and
    ``--retry-failed`` (a failed attempt): the newest complete restart file of the run
    directory (:func:`~ionmd.driver.runner.latest_restart`). None, to start afresh,
    for a first attempt, when no restart file is complete, and when the model files
    differ from those the earlier attempt ran with (``hashes`` is the current
    :func:`model_hashes`): a trajectory is never continued with another model.
    """
    if run.attempts == 0:
        return None
    if model_changed(run, hashes):
        return None
    return latest_restart(run_dir)


def mark_interrupted(config: SweepConfig, runs: dict[str, RunRecord], assigned: list[str],
                     wait_s: float = 3.0) -> None:
    """After SIGTERM: index the runs; those still running are marked interrupted.

    The process running an ``assigned`` run writes its own ``status.json``; this waits
    up to ``wait_s`` for them, then takes each assigned run's state from its file.
    """
    deadline = time.time() + wait_s
    pending = set(assigned)
    while pending and time.time() < deadline:
        for run_id in list(pending):
            try:
                record = read_status(status_path(config.sweep_dir, runs[run_id]), run_id)
            except InputError:
                continue
            if record.status != "running":
                runs[run_id] = record
                pending.discard(run_id)
        time.sleep(0.05)
    for run_id, run in runs.items():
        if run.status == "running":
            run.status = "interrupted"
            if run_id in pending:
                save_status(config.sweep_dir, run)
    write_index(config.sweep_dir, config.name, list(runs.values()))
