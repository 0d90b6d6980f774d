"""SIGTERM or SIGINT to ``ionmd neb`` stops every child ``lmp`` (and ``mpirun``).

A real NEB (EAM Cu vacancy hop, 3 partitions, a step budget it cannot finish) is started
as a separate process; once its ``lmp`` ranks run, the signal goes to the ``ionmd``
process only (as ``kill PID`` or a batch system would send it). Every process that was
its descendant must be gone afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_neb_eam import cu_vacancy_hop
from test_neb_errors import eam_neb_argv

from ionmd.neb.runner import descendant_processes, process_alive

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")

TESTS = Path(__file__).resolve().parent


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """Every live descendant of ``root``: pid -> (command name, start time)."""
    return {pid: (_comm(pid), start) for pid, start in descendant_processes(root).items()}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_ionmd_neb_stops_every_child_lmp(tmp_path, sig):
    initial, final, _ = cu_vacancy_hop()
    argv = eam_neb_argv(
        tmp_path, initial, final,
        "--images", "3", "--no-relax", "--ftol", "1e-12",
        "--steps", "1000000", "--climb-steps", "1000000",
        "--workdir", str(tmp_path / "w"),
    )  # fmt: skip
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from test_neb_errors import ionmd_main; "
        "sys.exit(ionmd_main(sys.argv[2:]))"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(TESTS), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        kids: dict[int, tuple[str, str]] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            kids = descendants(proc.pid)
            if sum(1 for name, _ in kids.values() if name == "lmp") >= 3:
                break
            time.sleep(0.2)
        n_lmp = sum(1 for name, _ in kids.values() if name == "lmp")
        assert proc.poll() is None, proc.communicate()
        assert n_lmp >= 3, kids
        time.sleep(1.0)  # let the NEB get going
        kids = descendants(proc.pid)
        assert all(process_alive(pid, st) for pid, (name, st) in kids.items() if name == "lmp")
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # the test failed: do not leave anything behind ourselves
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    time.sleep(0.5)
    survivors = {pid: name for pid, (name, start) in kids.items() if process_alive(pid, start)}
    for pid in survivors:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"children left running after {sig.name}: {survivors}"
    assert any(name == "lmp" for name, _ in kids.values())


def test_stop_process_group_reaches_a_grandchild_in_its_own_session_that_ignores_sigterm():
    """MPI ranks may sit in process groups of their own; SIGKILL after the grace time."""
    from ionmd.neb.runner import stop_process_group

    proc = subprocess.Popen(
        ["bash", "-c", "setsid bash -c 'trap \"\" TERM; sleep 300' & sleep 300"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        kids: dict[int, tuple[str, str]] = {}
        while time.monotonic() < deadline:
            kids = descendants(proc.pid)
            if sum(1 for name, _ in kids.values() if name == "sleep") >= 2:
                break
            time.sleep(0.05)
        assert sum(1 for name, _ in kids.values() if name == "sleep") >= 2, kids
        assert all(process_alive(pid, st) for pid, (_, st) in kids.items())
        t0 = time.monotonic()
        stop_process_group(proc, grace_s=1.0)
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    survivors = {pid: name for pid, (name, start) in kids.items() if process_alive(pid, start)}
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, survivors
