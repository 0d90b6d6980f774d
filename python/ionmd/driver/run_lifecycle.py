"""The lifecycle of one sweep run, and the one loop that runs them one after another.

:func:`start_run` takes the run's lock, writes its inputs, probes for a restart
file to continue from (:func:`~ionmd.driver.sweep_state.resume_point`, for
``--resume`` and ``--retry-failed`` alike), trims the dump and deviation file to
it and starts the real LAMMPS as a child process; :func:`finish_run` and
:func:`interrupt_run` record the outcome in the run's ``status.json``.
:func:`run_loop` is the only loop that runs runs: a :class:`RunSource` hands it
the next run (from a local queue on world rank 0 or in a serial sweep, from MPI
messages on the other group leaders, see :mod:`ionmd.driver.mpi_dispatch`).
"""

from __future__ import annotations

import os
import shlex
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from ionmd.driver.lammps_input import DUMP_FILE, spec_for_data_file, write_md_input
from ionmd.driver.potential import DEVIATION_FILE
from ionmd.driver.runner import (
    LOCK_FILE,
    ChildRun,
    RunBusy,
    RunLock,
    child_env,
    lammps_command,
    outcome,
    real_lammps,
    restart_candidates,
    truncate_dump,
    truncate_step_table,
)
from ionmd.driver.sweep_config import SweepConfig
from ionmd.driver.sweep_state import model_changed, model_hashes, resume_point
from ionmd.driver.sweepdir import RunRecord, now_utc, save_status
from ionmd.errors import InputError, IonmdError


class SweepInterrupted(IonmdError):
    """The sweep received SIGTERM or SIGINT; running runs were marked interrupted."""


class RunSource(Protocol):
    """Where :func:`run_loop` gets its runs from, and what it does while one runs."""

    def next_run(self, finished: RunRecord | None) -> RunRecord | None:
        """Take the record of the run just ended (None at first); return the next, or None."""

    def idle(self) -> None:
        """Called repeatedly while a run's LAMMPS is running (it should sleep briefly)."""


def run_loop(config: SweepConfig, source: RunSource, ranks: int, gpu: int | None,
             group: int) -> None:
    """Run the runs ``source`` hands out, one at a time, each as a LAMMPS child process.

    On :class:`SweepInterrupted` (raised by the signal handler) the running run's
    child is stopped and the run is marked interrupted before the exception goes on.
    """
    finished: RunRecord | None = None
    run: RunRecord | None = None
    child: ChildRun | None = None
    try:
        while (run := source.next_run(finished)) is not None:
            child = start_run(config, run, ranks, gpu, group)
            if child is not None:
                while (rc := child.poll()) is None:
                    source.idle()
                finish_run(config, run, child, rc)
            finished, run, child = run, None, None
    except SweepInterrupted:
        if run is not None and run.status == "running":
            interrupt_run(config, run, child)
        raise


def _fresh_run_dir(run_dir: Path) -> None:
    keep = ("status.json", LOCK_FILE)
    for child in run_dir.iterdir():
        if child.name not in keep and child.is_file():
            child.unlink()


def start_run(config: SweepConfig, run: RunRecord, ranks: int, gpu: int | None = None,
              group: int = 0) -> ChildRun | None:
    """Prepare ``run``'s directory and start LAMMPS; return None if it failed at once.

    A run whose earlier attempt (interrupted, or failed and retried) left a complete
    restart file continues from the newest one; otherwise it starts fresh from the
    data file. The run's lock (:class:`~ionmd.driver.runner.RunLock`) is taken first
    and handed to the LAMMPS child; if another live process holds it, the run is
    marked failed in memory only and its directory is not touched. An unexpected
    error while preparing (a full disk, say) fails this run only.
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
    retried = run.attempts > 0 and run.status == "failed"
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
                        **({"retry_of_failed": True} if retried else {}),
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
                         restart[0] if restart is not None else None)
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
