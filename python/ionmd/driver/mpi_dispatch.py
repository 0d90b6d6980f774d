"""Scheduling the runs of a sweep over MPI groups (or serially without mpi4py).

``mpirun -np P ionmd sweep SWEEP.toml --ranks-per-run R`` splits ``COMM_WORLD``
into P/R groups. World rank 0 keeps the queue (:class:`_Dispatcher`) and hands
out runs by MPI messages; it also leads group 0. Every group leader runs its runs
through the one :func:`~ionmd.driver.run_lifecycle.run_loop`: rank 0 feeds it
from the queue and serves the other leaders while its own LAMMPS runs, the other
leaders feed it from MPI messages (:class:`_Requester`). The other ranks of a
group hold their slot and sleep. A single process without mpi4py (and without
an MPI launcher around it) runs the same loop from the same queue, serially.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ionmd.driver.run_lifecycle import SweepInterrupted, run_loop
from ionmd.driver.sweep_config import SweepConfig
from ionmd.driver.sweep_state import (
    SweepSummary,
    mark_interrupted,
    prepare_sweep,
    status_counts,
    summarize,
)
from ionmd.driver.sweepdir import RunRecord, write_index
from ionmd.errors import InputError, IonmdError

TAG_REQUEST, TAG_ASSIGN, TAG_GROUP = 11, 12, 13
POLL_S = 0.1
# Environment variables through which MPI launchers give the number of ranks.
_LAUNCHER_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


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

    def report(self, runs: dict[str, RunRecord], n_queued: int, force: bool = False,
               every_s: float = 10.0) -> None:
        """Print one progress line (at most every ``every_s`` unless ``force``).

        ``n_queued`` is the number of runs still in the queue: they are what is left
        besides the running ones, whatever their recorded status (a failed run queued by
        ``--retry-failed`` keeps status "failed" until it starts).
        """
        now = time.time()
        if not force and now - self.last < every_s:
            return
        self.last = now
        counts = status_counts(list(runs.values()))
        left = n_queued + counts["running"]
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
    """``(MPI, COMM_WORLD)``, or ``(None, None)`` for a serial sweep without mpi4py."""
    try:
        from mpi4py import MPI
    except ImportError:
        size = max((int(os.environ[v]) for v in _LAUNCHER_SIZE_VARS
                    if os.environ.get(v, "").isdigit()), default=1)
        if size > 1:
            raise IonmdError(f"ionmd sweep runs on {size} MPI ranks but mpi4py cannot be "
                             "imported: install mpi4py, or run the sweep as one process") from None
        return None, None
    return MPI, MPI.COMM_WORLD


def world_rank() -> int:
    """This process's rank in ``MPI_COMM_WORLD`` (0 for a serial sweep)."""
    _, world = _world()
    return 0 if world is None else world.Get_rank()


def _gpu_for_group(MPI, world, is_leader: bool, gpus_per_node: int) -> int | None:
    """Return the GPU index of this group leader: its rank among leaders on its node."""
    if gpus_per_node <= 0:
        return None
    if world is None:
        return 0
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


def _release_group(world, group_size: int) -> None:
    """Tell the idle members of this leader's group to return."""
    if world is None:
        return
    rank = world.Get_rank()
    for member in range(rank + 1, rank + group_size):
        world.send(None, dest=member, tag=TAG_GROUP)


def run_sweep(config: SweepConfig, ranks_per_run: int = 1, resume: bool = False,
              retry_failed: bool = False, gpus_per_node: int = 0,
              printer: Callable[[str], None] | None = None,
              progress_every_s: float = 10.0) -> SweepSummary | None:
    """Run (or resume) a sweep on every rank of ``MPI_COMM_WORLD`` (or serially).

    Returns the summary on world rank 0 and None on other ranks. Raises
    :class:`SweepInterrupted` after SIGTERM/SIGINT, once running runs are marked
    interrupted.
    """
    MPI, world = _world()
    size, rank = (1, 0) if world is None else (world.Get_size(), world.Get_rank())
    if ranks_per_run < 1 or size % ranks_per_run:
        raise InputError(f"--ranks-per-run {ranks_per_run} must divide the {size} MPI ranks")
    printer = printer or (lambda text: print(text, flush=True))
    n_groups = size // ranks_per_run
    color = rank // ranks_per_run
    is_leader = rank % ranks_per_run == 0
    gpu = _gpu_for_group(MPI, world, is_leader, gpus_per_node)
    old = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if rank == 0:
            dispatcher = _Dispatcher(config, world, n_groups, ranks_per_run, printer,
                                     progress_every_s)
            return dispatcher.run(resume, retry_failed, gpu)
        if is_leader:
            try:
                run_loop(config, _Requester(world), ranks_per_run, gpu, color)
            finally:
                _release_group(world, ranks_per_run)
        else:
            _wait(world.irecv(source=color * ranks_per_run, tag=TAG_GROUP))
        return None
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _Requester:
    """The run source of a group leader other than world rank 0: asks rank 0 by MPI."""

    def __init__(self, world) -> None:
        self.world = world

    def next_run(self, finished: RunRecord | None) -> RunRecord | None:
        self.world.send(None if finished is None else finished.to_dict(), dest=0,
                        tag=TAG_REQUEST)
        message = _wait(self.world.irecv(source=0, tag=TAG_ASSIGN))
        return None if message is None else RunRecord.from_dict(message)

    def idle(self) -> None:
        time.sleep(POLL_S)


class _Dispatcher:
    """World rank 0: keeps the queue, serves the other leaders, feeds its own run loop."""

    def __init__(self, config: SweepConfig, world, n_groups: int, ranks: int,
                 printer: Callable[[str], None], progress_every_s: float) -> None:
        self.config, self.world, self.n_groups, self.ranks = config, world, n_groups, ranks
        self.printer, self.progress_every_s = printer, progress_every_s
        self.runs: dict[str, RunRecord] = {}
        self.queue: list[str] = []
        self.assigned: dict[int, str] = {}  # world rank of a leader -> its run id
        self.closed = 0  # leaders told that no run is left
        self.dirty = False  # group 0's run started since the index was last written
        self.progress = _Progress(printer, 0, n_groups)

    def run(self, resume: bool, retry_failed: bool, gpu: int | None) -> SweepSummary:
        """Prepare the sweep, run it to the end and return its summary."""
        t0 = time.time()
        try:
            all_runs, todo = prepare_sweep(self.config, resume, retry_failed)
        except BaseException:
            self._close_all()
            raise
        self.runs = {r.id: r for r in all_runs}
        self.queue = list(todo)
        skipped = sum(1 for r in all_runs if r.status == "done")
        self.progress = _Progress(self.printer, len(all_runs), self.n_groups)
        self.printer(f"[sweep] {self.config.name}: {len(all_runs)} runs, {len(todo)} to do, "
                     f"{skipped} already done, {self.n_groups} group(s) of {self.ranks} "
                     f"rank(s); directory {self.config.sweep_dir}")
        try:
            run_loop(self.config, self, self.ranks, gpu, 0)
            while self.closed < self.n_groups - 1:  # the other leaders finish their runs
                self.idle()
        except SweepInterrupted:
            mark_interrupted(self.config, self.runs, list(self.assigned.values()))
            raise
        runs = list(self.runs.values())
        write_index(self.config.sweep_dir, self.config.name, runs)
        summary = summarize(self.config, runs, skipped, time.time() - t0)
        self.progress.report(self.runs, len(self.queue), force=True)
        for r in runs:
            if r.status == "failed":
                self.printer(f"[sweep] FAILED {r.id}: {r.error}")
        return summary

    def _close_all(self) -> None:
        """Tell every other leader and this group's members that there is nothing to run."""
        if self.world is None:
            return
        for dest in range(self.ranks, self.world.Get_size(), self.ranks):
            self.world.send(None, dest=dest, tag=TAG_ASSIGN)
        _release_group(self.world, self.ranks)

    def _record(self, data: dict[str, Any] | RunRecord) -> None:
        record = data if isinstance(data, RunRecord) else RunRecord.from_dict(data)
        self.runs[record.id] = record
        if record.status == "done":
            self.progress.walls.append(record.wall_s)

    def _serve(self) -> bool:
        """Answer the leaders' pending requests; return whether any came."""
        if self.world is None:
            return False
        from mpi4py import MPI

        served = False
        status = MPI.Status()
        while self.world.iprobe(source=MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status):
            source = status.Get_source()
            report = self.world.recv(source=source, tag=TAG_REQUEST)
            if report is not None:
                self._record(report)
                self.assigned.pop(source, None)
            if self.queue:
                run = self.runs[self.queue.pop(0)]
                self.assigned[source] = run.id
                self.world.send(run.to_dict(), dest=source, tag=TAG_ASSIGN)
                run.status = "running"
            else:
                self.world.send(None, dest=source, tag=TAG_ASSIGN)
                self.closed += 1
            served = True
        return served

    def _changed(self) -> None:
        self.dirty = False
        write_index(self.config.sweep_dir, self.config.name, list(self.runs.values()))
        self.progress.report(self.runs, len(self.queue), force=True)

    def next_run(self, finished: RunRecord | None) -> RunRecord | None:
        """Group 0's next run, after serving the other leaders; None when the queue is empty."""
        if finished is not None:
            self._record(finished)
        served = self._serve()
        if not self.queue:
            _release_group(self.world, self.ranks)
            self._changed()
            return None
        run = self.runs[self.queue.pop(0)]
        if finished is not None or served:
            self._changed()
        self.dirty = True  # the index shows it running once it has started
        return run

    def idle(self) -> None:
        """Serve the other leaders and report progress while a run (or they) run."""
        if self._serve() or self.dirty:
            self._changed()
        else:
            self.progress.report(self.runs, len(self.queue), every_s=self.progress_every_s)
        time.sleep(POLL_S)


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
