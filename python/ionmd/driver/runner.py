"""Run one LAMMPS job as a child process, and read back how it ended.

A run is launched as ``lmp -in in.lammps`` (one rank) or through a launcher such
as ``mpirun -np R lmp ...`` (R ranks), with the MPI/PMI variables of the parent
(itself an MPI process of the sweep) removed from the environment: otherwise the
child's ``MPI_Init`` tries to join the parent's job and fails ("PMI_Init returned
-1" with MPICH). Why child processes and not ``lammps(comm=...)`` in-process is
explained in ``docs/driver.md``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Environment prefixes of MPI launchers (MPICH/Hydra, Intel MPI, Open MPI, PMIx).
STRIPPED_ENV_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "HYDI_", "MPIR_", "MPI_LOCALRANKID",
                         "MPI_LOCALNRANKS", "OMPI_", "OPAL_", "PRTE_", "I_MPI_HYDRA_",
                         "I_MPI_PMI")
RESTART_FILES = ("restart.a.lmp", "restart.b.lmp")
COMPLETE_MARK = "ionmd: run complete"
_UNITS = ("metal", "real", "lj", "si", "cgs", "electron", "micro", "nano")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without MPI launcher variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_ENV_PREFIXES)}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra or {})
    return env


def lammps_command(lmp: str, ranks: int, launcher: str, restart: str | None) -> list[str]:
    """Return the command line of one run (run in the run directory)."""
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


def latest_restart(run_dir: Path) -> tuple[str, int] | None:
    """Return (file name, step) of the newest readable restart file of a run."""
    found = []
    for name in RESTART_FILES:
        step = restart_step(run_dir / name)
        if step is not None and (run_dir / name).stat().st_size > 256:
            found.append((step, name))
    if not found:
        return None
    step, name = max(found)
    return name, step


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

    @classmethod
    def start(cls, run_dir: Path, cmd: list[str], env: dict[str, str],
              timeout_s: float = 0.0) -> ChildRun:
        """Start ``cmd`` in ``run_dir`` with stdout and stderr to ``stdout.txt``."""
        out = open(run_dir / "stdout.txt", "w")  # noqa: SIM115 - closed with the process
        try:
            process = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=_set_pdeathsig)
        except OSError as exc:
            out.write(f"ERROR: cannot start {cmd[0]}: {exc}\n")
            out.close()
            raise
        out.close()
        return cls(process=process, run_dir=run_dir, started=time.time(), timeout_s=timeout_s)

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
