"""Launching a LAMMPS NEB on N partitions: ``mpirun ... lmp -partition Nx1`` or mpi4py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from ionmd.errors import InputError, IonmdError
from ionmd.neb.parse import lammps_errors

LAUNCHERS: tuple[str, ...] = ("mpirun", "mpi4py")

STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Signals that stop an NEB: forwarded to the child process group, then re-raised."""

GRACE_S = 5.0
"""Seconds the children get to exit after SIGTERM before the group is killed (SIGKILL)."""


class _Stop(BaseException):
    """Raised inside the signal handler to leave ``communicate`` (carries the signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's group of that id
        return False
    return True


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) from ``/proc/<pid>/stat``; None if gone (or no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[1]), rest[19]


def descendant_processes(root: int) -> dict[int, str]:
    """Live descendants of ``root`` (pid -> start time), from ``/proc``; empty elsewhere.

    MPI launchers (e.g. MPICH's hydra) put each rank in a process group of its own, so
    a signal to the launcher's group alone may not reach the ranks.
    """
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None:
                children.setdefault(st[1], []).append(int(entry))
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            st = _proc_stat(c)
            if st is not None and c not in out:
                out[c] = st[2]
                todo.append(c)
    return out


def process_alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` with this start time still runs (and is not a zombie)."""
    st = _proc_stat(pid)
    return st is not None and st[2] == start and st[0] != "Z"


def _signal_all(pgid: int, pids: dict[int, str], sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid, start in pids.items():
        if process_alive(pid, start):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def stop_process_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """Stop ``proc`` and every process under it: SIGTERM, wait up to ``grace_s``, SIGKILL.

    ``proc`` must have been started with ``start_new_session=True`` (its pid is the group
    id). Its descendants are also signalled one by one (found through ``/proc`` before the
    first signal), since MPI ranks may sit in process groups of their own.
    """
    pgid = proc.pid
    tree = descendant_processes(pgid)
    _signal_all(pgid, tree, signal.SIGTERM)

    def remaining() -> bool:
        return (
            proc.poll() is None
            or _group_alive(pgid)
            or any(process_alive(pid, start) for pid, start in tree.items())
        )

    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and remaining():
        time.sleep(0.05)
    if remaining():
        tree.update(descendant_processes(pgid))
        _signal_all(pgid, tree, signal.SIGKILL)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable child
        pass


def run_child_group(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; never leave a child behind.

    SIGTERM, SIGINT or SIGHUP received while it runs (in the main thread) are forwarded to
    the whole group, the group is waited for and killed if needed, and the signal is then
    re-raised with the previous handler in place (SIGINT: ``KeyboardInterrupt``; SIGTERM
    with the default handler: the process ends as it would have). A timeout or any other
    exception also stops the group.

    Returns
    -------
    subprocess.CompletedProcess
        Exit status and captured stdout/stderr text.

    Raises
    ------
    subprocess.TimeoutExpired
        After ``timeout_s`` seconds (the group already stopped).
    """
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def _handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise _Stop(signum)

    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, _handler)
    stopped: int | None = None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except _Stop as exc:
        stopped = exc.signum
        for sig in previous:  # a second signal must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        stop_process_group(proc)
        out = err = ""
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            stop_process_group(proc)
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
    if stopped is not None:
        signal.raise_signal(stopped)
        raise IonmdError(f"stopped by signal {signal.Signals(stopped).name}: {' '.join(cmd)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def neb_command(
    n_partitions: int,
    launcher: str = "mpirun",
    lmp: str = "lmp",
    mpirun: str = "mpirun",
    input_name: str = "in.neb",
    ranks_per_image: int = 1,
) -> list[str]:
    """The command line that runs ``input_name`` with one replica per partition.

    Each of the ``n_partitions`` partitions has ``ranks_per_image`` MPI ranks.
    """
    if launcher not in LAUNCHERS:
        raise InputError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if n_partitions < 3:
        raise InputError(f"an NEB needs at least 3 partitions (replicas), got {n_partitions}")
    if ranks_per_image < 1:
        raise InputError(f"ranks per image must be >= 1, got {ranks_per_image}")
    n_ranks = str(n_partitions * ranks_per_image)
    lammps_args = [
        "-partition",
        f"{n_partitions}x{ranks_per_image}",
        "-in",
        input_name,
        "-log",
        "log.lammps",
        "-screen",
        "screen",
    ]
    if launcher == "mpirun":
        exe = shutil.which(lmp) or lmp
        return [mpirun, "-np", n_ranks, exe, *lammps_args]
    return [
        mpirun,
        "-np",
        n_ranks,
        sys.executable,
        "-m",
        "ionmd.neb.mpi_worker",
        *lammps_args,
    ]


def run_neb_partitions(
    workdir: Path,
    n_partitions: int,
    launcher: str = "mpirun",
    lmp: str = "lmp",
    mpirun: str = "mpirun",
    timeout_s: float | None = None,
    ranks_per_image: int = 1,
) -> None:
    """Run ``workdir/in.neb`` on ``n_partitions`` MPI partitions; raise with LAMMPS's error text.

    The MPI launcher runs in its own process group (:func:`run_child_group`): a timeout,
    SIGTERM or SIGINT stops every ``lmp`` rank before this function returns or raises.
    """
    cmd = neb_command(n_partitions, launcher, lmp, mpirun, ranks_per_image=ranks_per_image)
    if shutil.which(cmd[0]) is None:
        raise IonmdError(
            f"{cmd[0]} not found on PATH; it is needed to run an NEB on {n_partitions} partitions"
        )
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if launcher == "mpi4py":  # the worker ranks must import this very ionmd package
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = run_child_group(cmd, workdir, env, timeout_s=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise IonmdError(f"NEB in {workdir} exceeded {timeout_s} s: {' '.join(cmd)}") from exc
    errors = lammps_errors(workdir)
    if errors or (proc.returncode != 0 and not replicas_finished(workdir, n_partitions)):
        detail = "; ".join(errors[:3]) or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise IonmdError(f"LAMMPS NEB failed in {workdir} (exit {proc.returncode}): {detail}")
    if proc.returncode != 0:
        warnings.warn(
            f"LAMMPS exited with status {proc.returncode} in {workdir} after every replica had "
            "finished the NEB and written its final state (a crash at MPI teardown); the "
            "result is read from the completed logs",
            RuntimeWarning,
            stacklevel=2,
        )


def replicas_finished(workdir: Path, n_partitions: int) -> bool:
    """Whether every replica wrote ``final.<k>.dump`` and closed its log (``Total wall time``)."""
    for k in range(n_partitions):
        log = workdir / f"log.lammps.{k}"
        if not (workdir / f"final.{k}.dump").is_file() or not log.is_file():
            return False
        if "Total wall time" not in log.read_text(errors="replace"):
            return False
    return True
