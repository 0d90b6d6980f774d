"""Resumable parameter sweeps: temperatures x models x seeds (x structures) over MPI.

``mpirun -np P ionmd sweep SWEEP.toml --ranks-per-run R`` splits ``COMM_WORLD``
into P/R groups. World rank 0 keeps the queue and hands out runs by MPI messages
(it also leads group 0). Each group leader runs LAMMPS as a child process (see
:mod:`ionmd.driver.runner` and ``docs/driver.md`` for why), so a run that aborts
never takes down another group; the other ranks of a group hold their slot and
sleep. State lives in files (shared contract 2, read and written by
:mod:`ionmd.driver.sweepdir`): each run directory has a ``status.json``, the
source of truth, and rank 0 keeps ``sweep.json`` and ``sweep.csv`` as the index.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ionmd.driver.lammps_input import DUMP_FILE, spec_for_data_file, write_md_input
from ionmd.driver.potential import DEVIATION_FILE
from ionmd.driver.runner import (
    LOCK_FILE,
    ChildRun,
    RunBusy,
    RunLock,
    busy_message,
    child_env,
    lammps_command,
    latest_restart,
    outcome,
    real_lammps,
    restart_candidates,
    run_busy,
    truncate_dump,
    truncate_step_table,
)
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
from ionmd.errors import InputError, IonmdError
from ionmd.filehash import file_sha256

TAG_REQUEST, TAG_ASSIGN, TAG_GROUP = 11, 12, 13
POLL_S = 0.1


class SweepInterrupted(IonmdError):
    """The sweep received SIGTERM or SIGINT; running runs were marked interrupted."""


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


# --- Sweep directory ------------------------------------------------------------------


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
    resume from their last restart file, failed ones rerun only with ``retry_failed``.
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
    """The restart file (and step) an unfinished run continues from, or None to start afresh.

    None for a first or a failed attempt, when no restart file is readable, and when the
    model files differ from those the earlier attempt ran with (``hashes`` is the current
    :func:`model_hashes`): a trajectory is never continued with another model.
    """
    if run.attempts == 0 or run.status == "failed":
        return None
    if model_changed(run, hashes):
        return None
    return latest_restart(run_dir)


# --- One run -------------------------------------------------------------------------------


def _fresh_run_dir(run_dir: Path) -> None:
    keep = ("status.json", LOCK_FILE)
    for child in run_dir.iterdir():
        if child.name not in keep and child.is_file():
            child.unlink()


def start_run(config: SweepConfig, run: RunRecord, ranks: int, gpu: int | None = None,
              group: int = 0) -> ChildRun | None:
    """Prepare ``run``'s directory and start LAMMPS; return None if it failed at once.

    A run with a complete restart file (left by an interrupted attempt) resumes
    from it; otherwise it starts fresh from the data file. The run's lock
    (:class:`~ionmd.driver.runner.RunLock`) is taken first and handed to the
    LAMMPS child; if another live process holds it, the run is marked failed in
    memory only and its directory is not touched. An unexpected error while
    preparing (a full disk, say) fails this run only.
    """
    run_dir = config.sweep_dir / run.dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock.acquire(run_dir, run.id)
    except RunBusy as exc:
        # Another live process owns the directory (and its status.json): touch nothing.
        run.status, run.error = "failed", str(exc)
        return None
    except Exception as exc:  # noqa: BLE001 - one run's problem must not end the sweep
        return _finish(config, run, False, f"ionmd could not start the run: "
                                           f"{type(exc).__name__}: {exc}")
    child = None
    try:
        child = _start_run(config, run, ranks, gpu, group, lock)
        return child
    except SweepInterrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - one run's problem must not end the sweep
        return _finish(config, run, False, f"ionmd could not start the run: "
                                           f"{type(exc).__name__}: {exc}")
    finally:
        if child is None:
            lock.release()


def _start_run(config: SweepConfig, run: RunRecord, ranks: int, gpu: int | None,
               group: int, lock: RunLock | None = None) -> ChildRun | None:
    sweep_dir = config.sweep_dir
    run_dir = sweep_dir / run.dir
    run_dir.mkdir(parents=True, exist_ok=True)
    hashes = model_hashes(config, run.model)
    changed = bool(run.attempts) and model_changed(run, hashes)
    restart = resume_point(run, run_dir, hashes)
    skipped = []
    deviation_append = False
    if restart is None:
        _fresh_run_dir(run_dir)
        run.resumed_from_step = None
    else:
        name, step = restart
        skipped = [f"{n} (step {s}, incomplete)" for n, s, ok in restart_candidates(run_dir)
                   if not ok and n != name]
        truncate_dump(run_dir / DUMP_FILE, step)
        if (run_dir / DEVIATION_FILE).is_file():
            truncate_step_table(run_dir / DEVIATION_FILE, step)
            deviation_append = True
        if (run_dir / "log.lammps").is_file():
            os.replace(run_dir / "log.lammps", run_dir / f"log.attempt{run.attempts}.lammps")
        run.resumed_from_step = step
    run.attempts += 1
    run.status = "running"
    run.error = None
    run.started_at = now_utc()
    run.finished_at = None
    run.host = socket.gethostname()
    run.group = group
    run.gpu = gpu
    run.model_sha256 = hashes
    run.history.append({"attempt": run.attempts, "started_at": run.started_at,
                        "resumed_from_step": run.resumed_from_step,
                        **({"skipped_restarts": skipped} if skipped else {}),
                        **({"model_changed": True} if changed else {})})
    save_status(sweep_dir, run)
    models = config.models[run.model]
    missing = [m.path for m in models if m.path is not None and not Path(m.path).is_file()]
    if missing:
        return _finish(config, run, False, f"model file '{missing[0]}' does not exist "
                                           f"(model '{run.model}' in {config.path})")
    try:
        spec = spec_for_data_file(
            sweep_dir / run.data_file, models, run.T_K,
            data_file_in_input=os.path.relpath(sweep_dir / run.data_file, run_dir),
            seed=run.seed, title=f"ionmd sweep '{config.name}', run {run.id}",
            deviation_append=deviation_append, **config.md)
        write_md_input(spec, run_dir / "in.lammps")
    except InputError as exc:
        return _finish(config, run, False, str(exc))
    lmp_words, extra = real_lammps(config.lmp)
    if gpu is not None:
        extra["CUDA_VISIBLE_DEVICES"] = str(gpu)
    cmd = lammps_command(shlex.join(lmp_words), ranks, config.launcher,
                         restart[0] if run.resumed_from_step is not None and restart else None)
    try:
        return ChildRun.start(run_dir, cmd, child_env(extra), config.timeout_s, lock=lock)
    except OSError as exc:
        return _finish(config, run, False, f"cannot start LAMMPS ({cmd[0]}): {exc}")


def _finish(config: SweepConfig, run: RunRecord, ok: bool, error: str | None) -> None:
    run.status = "done" if ok else "failed"
    run.error = None if ok else error
    run.finished_at = now_utc()
    if run.started_at:
        started = datetime.fromisoformat(run.started_at)
        run.wall_s = round(run.wall_s + (datetime.now(timezone.utc) - started).total_seconds(), 3)
    if run.history:
        run.history[-1].update({"finished_at": run.finished_at, "status": run.status,
                                "error": run.error})
    save_status(config.sweep_dir, run)
    return None


def finish_run(config: SweepConfig, run: RunRecord, child: ChildRun, rc: int) -> None:
    """Record the outcome of a finished child in ``run``'s ``status.json``."""
    child.release()
    ok, error = outcome(child.run_dir, rc)
    if ok and not (config.sweep_dir / run.dump).is_file():
        ok, error = False, f"run completed but wrote no dump file {run.dump}"
    _finish(config, run, ok, error)


def interrupt_run(config: SweepConfig, run: RunRecord, child: ChildRun | None) -> None:
    """Stop ``run``'s child and mark the run interrupted (resumable)."""
    if child is not None:
        child.stop()
        child.release()
    run.status = "interrupted"
    run.error = None
    run.finished_at = now_utc()
    if run.history:
        run.history[-1].update({"finished_at": run.finished_at, "status": "interrupted"})
    save_status(config.sweep_dir, run)


# --- Scheduling over MPI groups ------------------------------------------------------------


class _Stop:
    """Signal flag set by SIGTERM/SIGINT."""

    requested = False
    signum = 0


def _handler(signum, frame) -> None:  # noqa: ARG001
    if _Stop.requested:  # already stopping: let the clean-up finish
        return
    _Stop.requested = True
    _Stop.signum = signum
    raise SweepInterrupted(f"received signal {signum}")


@dataclass
class _Progress:
    printer: Callable[[str], None]
    n_total: int
    n_groups: int
    t0: float = field(default_factory=time.time)
    last: float = 0.0
    walls: list[float] = field(default_factory=list)

    def report(self, runs: dict[str, RunRecord], force: bool = False, every_s: float = 10.0
               ) -> None:
        now = time.time()
        if not force and now - self.last < every_s:
            return
        self.last = now
        counts = {s: 0 for s in STATUSES}
        for r in runs.values():
            counts[r.status] = counts.get(r.status, 0) + 1
        left = counts["pending"] + counts["running"] + counts["interrupted"]
        eta = "?"
        if self.walls and left:
            mean = sum(self.walls) / len(self.walls)
            eta_s = mean * left / max(self.n_groups, 1)
            eta = time.strftime("%H:%M:%S", time.gmtime(eta_s))
        elif not left:
            eta = "00:00:00"
        self.printer(f"[sweep {time.strftime('%H:%M:%S', time.gmtime(now - self.t0))}] "
                     f"{counts['done']}/{self.n_total} done, {counts['running']} running, "
                     f"{counts['failed']} failed, {left - counts['running']} waiting; ETA {eta}")


def _world():
    from mpi4py import MPI

    return MPI, MPI.COMM_WORLD


def _gpu_for_group(MPI, world, is_leader: bool, gpus_per_node: int) -> int | None:
    """Return the GPU index of this group leader: its rank among leaders on its node."""
    if gpus_per_node <= 0:
        return None
    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    flags = node.allgather(is_leader)
    index = sum(flags[: node.rank])
    node.Free()
    return index % gpus_per_node


def _wait(request):
    """Wait for a non-blocking request without busy-polling a CPU."""
    while True:
        done, value = request.test()
        if done:
            return value
        time.sleep(POLL_S)


def run_sweep(config: SweepConfig, ranks_per_run: int = 1, resume: bool = False,
              retry_failed: bool = False, gpus_per_node: int = 0,
              printer: Callable[[str], None] | None = None,
              progress_every_s: float = 10.0) -> SweepSummary | None:
    """Run (or resume) a sweep on every rank of ``MPI_COMM_WORLD``.

    Returns the summary on world rank 0 and None on other ranks. Raises
    :class:`SweepInterrupted` after SIGTERM/SIGINT, once running runs are marked
    interrupted.
    """
    MPI, world = _world()
    size, rank = world.Get_size(), world.Get_rank()
    if ranks_per_run < 1 or size % ranks_per_run:
        raise InputError(f"--ranks-per-run {ranks_per_run} must divide the {size} MPI ranks")
    printer = printer or (lambda text: print(text, flush=True))
    n_groups = size // ranks_per_run
    color = rank // ranks_per_run
    group = world.Split(color, rank)
    is_leader = group.Get_rank() == 0
    gpu = _gpu_for_group(MPI, world, is_leader, gpus_per_node)
    old = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if rank == 0:
            return _dispatcher(config, world, n_groups, ranks_per_run, resume, retry_failed, gpu,
                               printer, progress_every_s)
        if is_leader:
            _leader(config, world, ranks_per_run, gpu)
        else:
            _wait(world.irecv(source=color * ranks_per_run, tag=TAG_GROUP))
        return None
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _leader(config: SweepConfig, world, ranks: int, gpu: int | None) -> None:
    """Ask rank 0 for runs until none is left; run each as a child process."""
    group_size = ranks
    report: dict[str, Any] | None = None
    run: RunRecord | None = None
    child: ChildRun | None = None
    try:
        try:
            while True:
                world.send(report, dest=0, tag=TAG_REQUEST)
                message = _wait(world.irecv(source=0, tag=TAG_ASSIGN))
                if message is None:
                    break
                run = RunRecord.from_dict(message)
                child = start_run(config, run, ranks, gpu, world.Get_rank() // ranks)
                if child is not None:
                    while (rc := child.poll()) is None:
                        time.sleep(POLL_S)
                    finish_run(config, run, child, rc)
                report, run, child = run.to_dict(), None, None
        except SweepInterrupted:
            if run is not None and run.status == "running":
                interrupt_run(config, run, child)
            raise
    finally:
        _release_group(world, group_size)


def _release_group(world, group_size: int) -> None:
    """Tell the idle members of this leader's group to return."""
    rank = world.Get_rank()
    for member in range(rank + 1, rank + group_size):
        world.send(None, dest=member, tag=TAG_GROUP)


def _dispatcher(config: SweepConfig, world, n_groups: int, ranks: int, resume: bool,
                retry_failed: bool, gpu: int | None, printer, progress_every_s: float
                ) -> SweepSummary:
    """World rank 0: keep the queue, serve other leaders, run group 0's runs, report."""
    from mpi4py import MPI

    t0 = time.time()
    try:
        all_runs, todo = prepare_sweep(config, resume, retry_failed)
    except BaseException:
        for dest in range(ranks, world.Get_size(), ranks):
            world.send(None, dest=dest, tag=TAG_ASSIGN)
        _release_group(world, ranks)
        raise
    runs = {r.id: r for r in all_runs}
    skipped = sum(1 for r in all_runs if r.status == "done")
    queue = list(todo)
    progress = _Progress(printer, len(all_runs), n_groups)
    printer(f"[sweep] {config.name}: {len(all_runs)} runs, {len(queue)} to do, "
            f"{skipped} already done, {n_groups} group(s) of {ranks} rank(s); "
            f"directory {config.sweep_dir}")
    assigned: dict[int, str] = {}
    closed = 0
    own: RunRecord | None = None
    child: ChildRun | None = None
    own_closed = False

    def record(data: dict[str, Any]) -> None:
        rec = RunRecord.from_dict(data)
        runs[rec.id] = rec
        if rec.status == "done":
            progress.walls.append(rec.wall_s)

    try:
        while True:
            changed = False
            status = MPI.Status()
            while world.iprobe(source=MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status):
                source = status.Get_source()
                report = world.recv(source=source, tag=TAG_REQUEST)
                if report is not None:
                    record(report)
                    assigned.pop(source, None)
                if queue:
                    run = runs[queue.pop(0)]
                    assigned[source] = run.id
                    world.send(run.to_dict(), dest=source, tag=TAG_ASSIGN)
                    run.status = "running"
                else:
                    world.send(None, dest=source, tag=TAG_ASSIGN)
                    closed += 1
                changed = True
            if child is None and own is None and not own_closed:
                if queue:
                    own = runs[queue.pop(0)]
                    child = start_run(config, own, ranks, gpu, 0)
                    if child is None:
                        record(own.to_dict())
                        own = None
                    changed = True
                else:
                    own_closed = True
                    _release_group(world, ranks)
            elif child is not None and own is not None:
                rc = child.poll()
                if rc is not None:
                    finish_run(config, own, child, rc)
                    record(own.to_dict())
                    own, child = None, None
                    changed = True
            if changed:
                write_index(config.sweep_dir, config.name, list(runs.values()))
                progress.report(runs, force=True)
            else:
                progress.report(runs, every_s=progress_every_s)
            if own_closed and closed == n_groups - 1:
                break
            time.sleep(POLL_S)
    except SweepInterrupted:
        if own is not None:
            interrupt_run(config, own, child)
            runs[own.id] = own
        _mark_interrupted(config, runs, list(assigned.values()))
        raise
    write_index(config.sweep_dir, config.name, list(runs.values()))
    counts = {s: sum(1 for r in runs.values() if r.status == s) for s in STATUSES}
    summary = SweepSummary(sweep_dir=str(config.sweep_dir), n_runs=len(runs), done=counts["done"],
                           failed=counts["failed"], pending=counts["pending"],
                           interrupted=counts["interrupted"], skipped_done=skipped,
                           wall_s=round(time.time() - t0, 3))
    progress.report(runs, force=True)
    for r in runs.values():
        if r.status == "failed":
            printer(f"[sweep] FAILED {r.id}: {r.error}")
    return summary


def _mark_interrupted(config: SweepConfig, runs: dict[str, RunRecord], assigned: list[str],
                      wait_s: float = 3.0) -> None:
    """Rank 0 on SIGTERM: index the runs; those still running are marked interrupted.

    Other leaders write their own run's status.json; rank 0 waits up to ``wait_s``
    for them, then takes each assigned run's state from its status.json.
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


def linger_after_interrupt(seconds: float = 5.0) -> None:
    """Non-zero ranks: stay alive briefly so the launcher does not kill rank 0 mid-write."""
    try:
        time.sleep(seconds)
    except SweepInterrupted:
        pass


def exit_code_for_signal() -> int:
    """Return the conventional exit code (128 + signal) after an interrupted sweep."""
    return 128 + (_Stop.signum or signal.SIGTERM)


def flush_and_exit(code: int) -> None:
    """Leave at once without MPI_Finalize (other ranks may be gone after a signal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
