"""Fault tolerance of ``ionmd sweep`` (issue 17, D4, D5, D7, D11).

* D4: a truncated newest restart file (a kill during ``write_restart``) is passed
  over for the older complete one, and the dump keeps every frame it needs;
* D5: SIGKILL of the sweep alone leaves no LAMMPS orphan; an orphan that does
  exist (a wrapper the sweep cannot see through) holds the run's lock, and a
  resume refuses its directory, naming the run and the PID;
* D7: a resumed run with a deviation file appends to it;
* D11: a corrupt ``status.json`` stops the resume, naming the file.

Runs use the classical Lennard-Jones stand-in of ``tests/test_driver_sweep.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_driver_sweep import (
    LJ,
    _dump_steps,
    _env,
    _processes_in,
    _statuses,
    _sweep_cmd,
    _write_toml,
)

from ionmd.driver.runner import (
    LOCK_FILE,
    RunBusy,
    RunLock,
    busy_message,
    latest_restart,
    restart_complete,
    restart_step,
    run_busy,
    truncate_step_table,
)
from ionmd.driver.sweep import prepare_sweep, read_status, save_status
from ionmd.driver.sweep_config import load_sweep_config
from ionmd.errors import InputError


def _lammps(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    """Run a LAMMPS input text in ``tmp_path``."""
    (tmp_path / "in.t").write_text(text)
    return subprocess.run(["lmp", "-in", "in.t", "-log", "none"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=_env())


LJ_BOX = """units lj
lattice fcc 0.8442
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 1.0
pair_style lj/cut 2.5
pair_coeff 1 1 1.0 1.0
velocity all create 1.0 1
fix 1 all nve
"""


def test_restart_completeness_probe(tmp_path):
    """The closing magic string tells a complete restart from one cut anywhere short."""
    proc = _lammps(tmp_path, LJ_BOX + "run 20\nwrite_restart restart.a.lmp\nrun 20\n"
                                      "write_restart restart.b.lmp\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = tmp_path / "restart.a.lmp", tmp_path / "restart.b.lmp"
    assert restart_complete(a) and restart_complete(b)
    assert (restart_step(a), restart_step(b)) == (20, 40)
    assert latest_restart(tmp_path) == ("restart.b.lmp", 40)
    data = b.read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 300):
        b.write_bytes(data[:cut])
        assert restart_step(b) == 40  # the header alone looks fine ...
        assert not restart_complete(b)  # ... but the file is incomplete
        assert latest_restart(tmp_path) == ("restart.a.lmp", 20)
    # LAMMPS agrees: it refuses the cut file and reads the kept one.
    bad = _lammps(tmp_path, "read_restart restart.b.lmp\n")
    assert bad.returncode != 0
    assert "Incomplete or corrupted LAMMPS restart file" in bad.stdout + bad.stderr
    a.write_bytes(b"")
    assert latest_restart(tmp_path) is None


def test_truncate_step_table_keeps_comments_and_earlier_steps(tmp_path):
    path = tmp_path / "model_devi.out"
    path.write_text("#       step max_devi_v\n0 0.1\n100 0.2\n200 0.3\n300 0.4\n")
    assert truncate_step_table(path, 200) == 2
    assert path.read_text() == "#       step max_devi_v\n0 0.1\n100 0.2\n"


@pytest.mark.mpi
def test_truncated_newest_restart_resumes_from_the_older_one(tmp_path):
    """D4: the resume passes over a cut restart.b.lmp and keeps a continuous trajectory."""
    toml = _write_toml(tmp_path, f"lj = {LJ}", n_prod=3000, restart_every=500, temps="[900]")
    proc = subprocess.run(_sweep_cmd(toml), capture_output=True, text=True, env=_env(),
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep_dir = tmp_path / "s"
    config = load_sweep_config(toml)
    run_id, status = sorted(_statuses(sweep_dir).items())[0]
    run_dir = sweep_dir / status["dir"]
    steps = {n: restart_step(run_dir / n) for n in ("restart.a.lmp", "restart.b.lmp")}
    newest = max(steps, key=steps.get)
    older = min(steps, key=steps.get)
    assert steps[newest] > steps[older] > 100
    # As if killed during the newest write_restart, before the run completed.
    data = (run_dir / newest).read_bytes()
    (run_dir / newest).write_bytes(data[: len(data) * 2 // 3])
    frames = _dump_steps(run_dir / "dump.lammpstrj")
    record = read_status(run_dir / "status.json", run_id)
    record.status = "interrupted"
    save_status(sweep_dir, record)
    assert frames == list(range(100, 3101, 100))
    resumed = subprocess.run(_sweep_cmd(toml, "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _statuses(sweep_dir)[run_id]
    assert after["status"] == "done" and after["attempts"] == 2
    assert after["resumed_from_step"] == steps[older]
    assert after["history"][-1]["skipped_restarts"] == [f"{newest} (step {steps[newest]}, "
                                                        "incomplete)"]
    # Every production frame exactly once: those before the older restart were kept.
    assert _dump_steps(run_dir / "dump.lammpstrj") == list(range(100, 3101, 100))
    assert "resuming from restart" in (run_dir / "log.lammps").read_text()
    assert config.sweep_dir == sweep_dir.resolve()


def _sweep_pids(toml: Path) -> list[int]:
    """PIDs of the sweep's own processes (the Python ranks running ``toml``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and b"ionmd.driver" in cmd and str(toml).encode() in cmd:
            pids.append(int(proc.name))
    return pids


def _start_then_kill_sweep(toml: Path, tmp_path: Path, sweep_dir: Path, ranks: int = 1) -> None:
    """Start a one-group sweep; once LAMMPS has written a restart, SIGKILL the sweep alone."""
    cmd = _sweep_cmd(toml, np_=ranks)
    cmd[cmd.index("--ranks-per-run") + 1] = str(ranks)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(), cwd=tmp_path)
    deadline = time.time() + 120
    ready = False
    while time.time() < deadline and proc.poll() is None and not ready:
        time.sleep(0.1)
        try:
            statuses = _statuses(sweep_dir)
        except (OSError, ValueError):
            continue
        ready = any(s["status"] == "running" and latest_restart(sweep_dir / s["dir"])
                    for s in statuses.values())
    assert ready, "no run reached its first restart file"
    pids = _sweep_pids(toml)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    proc.kill()  # mpirun
    proc.wait(timeout=30)


def _wait_gone(sweep_dir: Path, wait_s: float = 15.0) -> list[str]:
    deadline = time.time() + wait_s
    while (left := _processes_in(sweep_dir)) and time.time() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_sigkill_of_the_sweep_alone_leaves_no_orphan_and_resume_completes(tmp_path, ranks):
    """D5: the real LAMMPS binary (or its mpirun) is the sweep's child and dies with it."""
    toml = _write_toml(tmp_path, f"lj = {LJ}", n_prod=60000, restart_every=1000,
                       temps="[900]")
    sweep_dir = tmp_path / "s"
    _start_then_kill_sweep(toml, tmp_path, sweep_dir, ranks)
    assert _wait_gone(sweep_dir) == []  # no LAMMPS left writing into the run directories
    before = _statuses(sweep_dir)
    assert "running" in {s["status"] for s in before.values()}  # as the killed sweep left it
    resumed = subprocess.run(_sweep_cmd(toml, "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=400, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _statuses(sweep_dir)
    assert {s["status"] for s in after.values()} == {"done"}
    for run_id, status in after.items():
        if before[run_id]["status"] == "running":
            assert status["attempts"] == 2 and status["resumed_from_step"] >= 1000
        assert _dump_steps(sweep_dir / status["dump"]) == list(range(100, 60101, 100))


@pytest.mark.mpi
def test_a_live_orphan_keeps_its_lock_and_a_resume_refuses_its_directory(tmp_path):
    """D5: started through a wrapper the sweep cannot resolve, LAMMPS outlives the sweep.

    The orphan inherited the run's lock, so the resume stops, naming the run and
    the orphan's PID, instead of running beside it; once it is gone the run is
    resumed.
    """
    wrapper = Path(sys.executable).parent / "lmp"
    if not wrapper.is_file():
        pytest.skip("no lmp wrapper beside this Python")
    toml = _write_toml(tmp_path, f"lj = {LJ}", n_prod=400000, restart_every=1000,
                       temps="[900]")
    # `python WRAPPER` hides the wrapper: the sweep runs it as given, and its SIGTERM on
    # the parent's death reaches only the wrapper, not the LAMMPS binary it started.
    toml.write_text(toml.read_text() + f'\n[run]\nlmp = "{sys.executable} {wrapper}"\n')
    sweep_dir = tmp_path / "s"
    _start_then_kill_sweep(toml, tmp_path, sweep_dir)
    time.sleep(1.0)
    orphans = _processes_in(sweep_dir)
    try:
        assert orphans, "expected the LAMMPS binary to outlive its wrapper"
        busy = [run_id for run_id, s in _statuses(sweep_dir).items()
                if run_busy(sweep_dir / s["dir"])]
        assert len(busy) == 1
        refused = subprocess.run(_sweep_cmd(toml, "--resume"), capture_output=True, text=True,
                                 env=_env(), timeout=120, cwd=tmp_path)
        assert refused.returncode != 0
        assert f"run {busy[0]}" in refused.stderr and "in use by a live process" in refused.stderr
        assert any(pid in refused.stderr for pid in orphans), refused.stderr
        assert _processes_in(sweep_dir) == orphans  # the orphan was left alone
    finally:
        for pid in orphans:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert _wait_gone(sweep_dir) == []
    deadline = time.time() + 10
    while (held := [busy_message(sweep_dir / s["dir"]) for s in _statuses(sweep_dir).values()
                    if run_busy(sweep_dir / s["dir"])]) and time.time() < deadline:
        time.sleep(0.1)
    assert not held, held
    # With the orphan gone, its directory is free again: the run is resumed.
    _, todo = prepare_sweep(load_sweep_config(toml), resume=True)
    assert busy[0] in todo


def test_run_lock_is_exclusive_and_inherited_by_the_child(tmp_path):
    lock = RunLock.acquire(tmp_path, "m/900K/seed1")
    assert run_busy(tmp_path)
    with pytest.raises(RunBusy, match=rf"run m/900K/seed1 \({tmp_path}\) is in use.*"
                                      rf"PID {os.getpid()}|in use"):
        RunLock.acquire(tmp_path, "m/900K/seed1")
    # A child that inherits the descriptor keeps the lock after this process lets go.
    child = subprocess.Popen(["sleep", "30"], pass_fds=(lock.fd,))
    try:
        lock.release()
        assert run_busy(tmp_path)
        with pytest.raises(RunBusy, match=rf"PID {child.pid} \(sleep\)"):
            RunLock.acquire(tmp_path, "m/900K/seed1")
    finally:
        child.kill()
        child.wait()
    assert not run_busy(tmp_path)
    again = RunLock.acquire(tmp_path)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    again.release()


def test_resume_refuses_a_directory_held_by_a_live_process(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[900]")
    config = load_sweep_config(toml)
    runs, _ = prepare_sweep(config)
    run_dir = config.sweep_dir / runs[1].dir
    lock = RunLock.acquire(run_dir, runs[1].id)
    child = subprocess.Popen(["sleep", "30"], pass_fds=(lock.fd,))
    lock.release()
    try:
        with pytest.raises(InputError, match=rf"run {runs[1].id} .*PID {child.pid}"):
            prepare_sweep(config, resume=True)
    finally:
        child.kill()
        child.wait()
    _, todo = prepare_sweep(config, resume=True)
    assert todo == [r.id for r in runs]


def test_start_run_leaves_a_busy_directory_alone(tmp_path):
    import ionmd.driver.sweep as sweep

    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[900]")
    config = load_sweep_config(toml)
    runs, _ = prepare_sweep(config)
    path = config.sweep_dir / runs[0].dir / "status.json"
    before = path.read_text()
    lock = RunLock.acquire(path.parent, runs[0].id)
    try:
        assert sweep.start_run(config, runs[0], 1) is None
    finally:
        lock.release()
    assert runs[0].status == "failed" and "in use by a live process" in runs[0].error
    assert path.read_text() == before and not (path.parent / "in.lammps").exists()


@pytest.mark.parametrize("text", ["{\"id\": \"lj/900K/se", "", "[1, 2]",
                                  '{"id": "other/900K/seed1", "status": "done"}',
                                  '{"id": "lj/900K/seed1", "status": "finished"}'])
def test_corrupt_status_json_stops_the_resume_naming_the_file(tmp_path, text):
    """D11: a status file that cannot be read is never taken for a run to redo."""
    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[900]")
    config = load_sweep_config(toml)
    runs, _ = prepare_sweep(config)
    path = config.sweep_dir / runs[0].dir / "status.json"
    assert runs[0].id == "lj/900K/seed1"
    runs[0].status, runs[0].attempts = "done", 1
    save_status(config.sweep_dir, runs[0])
    path.write_text(text)
    with pytest.raises(InputError, match=str(path)) as info:
        prepare_sweep(config, resume=True)
    assert "delete it to rerun" in str(info.value)
    assert path.read_text() == text  # left for the user to repair


def test_resumed_run_with_a_deviation_file_appends_to_it(tmp_path, monkeypatch):
    """D7: the resumed input says ``deviation_append yes``; the fresh one does not.

    The deviation file keeps its rows before the restart step (the resumed run
    writes those from the restart step on).
    """
    import ionmd.driver.sweep as sweep
    import ionmd.driver.sweep_state as sweep_state

    models = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for m in models:
        m.write_bytes(b"stand-in")
    toml = _write_toml(tmp_path, 'committee = { paths = ["a.pt", "b.pt"] }', temps="[900]",
                       extra_md="deviation_every = 50")
    config = load_sweep_config(toml)
    config.lmp = "true"  # nothing is run: only the written input is checked
    runs, _ = prepare_sweep(config)
    run = runs[0]
    run_dir = config.sweep_dir / run.dir
    child = sweep.start_run(config, run, 1)
    assert child is not None
    child.process.wait()
    child.release()
    fresh = (run_dir / "in.lammps").read_text()
    assert "deviation 50 model_devi.out device" in fresh and "deviation_append" not in fresh
    # An interrupted attempt that left a restart at step 200 and deviation rows to step 250.
    (run_dir / "model_devi.out").write_text("#  step max_devi_v\n" + "".join(
        f"{s} 0.1 0.1 0.1 0.2 0.2 0.2\n" for s in range(0, 300, 50)))
    run.status = "interrupted"
    monkeypatch.setattr(sweep_state, "latest_restart", lambda d: ("restart.a.lmp", 200))
    child = sweep.start_run(config, run, 1)
    assert child is not None
    child.process.wait()
    child.release()
    resumed = (run_dir / "in.lammps").read_text()
    pair = [line for line in resumed.splitlines() if line.startswith("pair_style")]
    assert pair == [f"pair_style      mlip/torch {models[0].resolve()} {models[1].resolve()} "
                    "deviation 50 model_devi.out deviation_append yes device auto"]
    steps = [int(line.split()[0]) for line in (run_dir / "model_devi.out").read_text()
             .splitlines() if not line.startswith("#")]
    assert steps == [0, 50, 100, 150]
    assert run.resumed_from_step == 200


def _plugin_has(word: bytes) -> bool:
    from ionmd.plugin import plugin_path

    path = plugin_path()
    return path is not None and word in Path(path).read_bytes()


@pytest.mark.mpi
def test_resumed_committee_run_continues_its_deviation_file(tmp_path):
    """D7 end to end: a committee run resumed from the older restart appends to the file."""
    if not _plugin_has(b"deviation_append"):
        pytest.skip("installed mlip/torch plugin has no deviation_append keyword")
    models = Path(__file__).resolve().parents[1] / "inputs" / "models"
    committee = (f'committee = {{ paths = ["{models / "lif_mace.pt"}", '
                 f'"{models / "lif_mace_halo.pt"}"] }}')
    toml = _write_toml(tmp_path, committee, n_prod=100, restart_every=40, temps="[600]",
                       extra_md="deviation_every = 10")
    toml.write_text(toml.read_text().replace("seeds = [1, 2]", "seeds = [1]")
                    .replace("n_equil = 100", "n_equil = 20")
                    .replace("dump_every = 100", "dump_every = 20"))
    proc = subprocess.run(_sweep_cmd(toml, np_=1), capture_output=True, text=True, env=_env(),
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep_dir = tmp_path / "s"
    run_id, status = next(iter(_statuses(sweep_dir).items()))
    run_dir = sweep_dir / status["dir"]
    devi = run_dir / "model_devi.out"
    first = devi.read_text().splitlines()
    steps = {n: restart_step(run_dir / n) for n in ("restart.a.lmp", "restart.b.lmp")}
    newest, older = max(steps, key=steps.get), min(steps, key=steps.get)
    assert (steps[older], steps[newest]) == (80, 120)
    # Killed during the newest write_restart: the resume goes back to step 80.
    data = (run_dir / newest).read_bytes()
    (run_dir / newest).write_bytes(data[: len(data) // 2])
    record = read_status(run_dir / "status.json", run_id)
    record.status = "interrupted"
    save_status(sweep_dir, record)
    resumed = subprocess.run(_sweep_cmd(toml, "--resume", np_=1), capture_output=True,
                             text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "deviation_append yes" in (run_dir / "in.lammps").read_text()
    assert _statuses(sweep_dir)[run_id]["resumed_from_step"] == 80
    after = devi.read_text().splitlines()

    def rows(lines):
        return [line for line in lines if not line.startswith("#")]

    def step(line):
        return int(line.split()[0])

    assert [line for line in after if line.startswith("#")] == [first[0]]  # one header
    # Rows before step 80 are the first attempt's, untouched; from 80 on the same steps again.
    assert [r for r in rows(after) if step(r) < 80] == [r for r in rows(first) if step(r) < 80]
    assert [step(r) for r in rows(after) if step(r) >= 80] == \
        [step(r) for r in rows(first) if step(r) >= 80]
    assert [step(r) for r in rows(after)][-1] == 120


# --- Serial sweeps and --retry-failed (issue 16, item 6) -----------------------------------


def _serial_without_mpi4py(monkeypatch) -> None:
    """Make ``from mpi4py import MPI`` fail, outside any MPI launcher."""
    import ionmd.driver.mpi_dispatch as dispatch

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    for name in dispatch._LAUNCHER_SIZE_VARS:
        monkeypatch.delenv(name, raising=False)


def test_serial_sweep_without_mpi4py_runs_every_run_through_the_same_loop(tmp_path, monkeypatch):
    from ionmd.driver.sweep import run_sweep, world_rank

    _serial_without_mpi4py(monkeypatch)
    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[900]")
    lines: list[str] = []
    summary = run_sweep(load_sweep_config(toml), printer=lines.append)
    assert world_rank() == 0
    assert (summary.n_runs, summary.done, summary.failed, summary.skipped_done) == (2, 2, 0, 0)
    statuses = _statuses(tmp_path / "s")
    assert sorted(statuses) == ["lj/900K/seed1", "lj/900K/seed2"]
    for status in statuses.values():
        assert (status["status"], status["attempts"], status["group"]) == ("done", 1, 0)
        assert _dump_steps(tmp_path / "s" / status["dump"]) == [100, 200, 300, 400]
    assert lines[0].startswith("[sweep] s: 2 runs, 2 to do, 0 already done, 1 group(s)")
    assert lines[-1].endswith("2/2 done, 0 running, 0 failed, 0 waiting; ETA 00:00:00")
    # A second call resumes: nothing is left to do, nothing is redone.
    again = run_sweep(load_sweep_config(toml), resume=True, printer=lines.append)
    assert (again.done, again.skipped_done) == (2, 2)
    assert {s["attempts"] for s in _statuses(tmp_path / "s").values()} == {1}


def test_without_mpi4py_under_an_mpi_launcher_the_sweep_refuses(tmp_path, monkeypatch):
    from ionmd.driver.sweep import run_sweep
    from ionmd.errors import IonmdError

    _serial_without_mpi4py(monkeypatch)
    monkeypatch.setenv("PMI_SIZE", "4")
    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[900]")
    with pytest.raises(IonmdError, match="4 MPI ranks but mpi4py cannot be imported"):
        run_sweep(load_sweep_config(toml))
    assert not (tmp_path / "s").exists()  # nothing was started


def _kill_lammps_after_restart(run_dir: Path, min_step: int, stop: threading.Event) -> None:
    """SIGKILL the LAMMPS child of ``run_dir`` once it wrote a restart at ``min_step`` or later."""
    while not stop.is_set():
        found = latest_restart(run_dir) if run_dir.is_dir() else None
        if found and found[1] >= min_step:
            for pid in _processes_in(run_dir):
                if int(pid) != os.getpid():
                    os.kill(int(pid), signal.SIGKILL)
            return
        time.sleep(0.02)


def test_retry_failed_continues_from_the_newest_complete_restart(tmp_path, monkeypatch):
    """A run whose LAMMPS died after writing restarts fails; --retry-failed continues it.

    The retry takes the newest complete restart file (the probe ``--resume`` uses),
    passes over a cut newer one, records ``retry_of_failed`` and the step in the new
    attempt's history, and the dump holds every production frame exactly once.
    """
    from ionmd.driver.sweep import run_sweep

    _serial_without_mpi4py(monkeypatch)
    toml = _write_toml(tmp_path, f"lj = {LJ}", n_prod=30000, restart_every=1000, temps="[900]")
    toml.write_text(toml.read_text().replace("seeds = [1, 2]", "seeds = [1]"))
    sweep_dir = tmp_path / "s"
    run_dir = sweep_dir / "runs" / "lj" / "900K" / "seed1"
    stop = threading.Event()
    killer = threading.Thread(target=_kill_lammps_after_restart, args=(run_dir, 3000, stop))
    killer.start()
    try:
        first = run_sweep(load_sweep_config(toml), printer=lambda text: None)
    finally:
        stop.set()
        killer.join()
    assert (first.done, first.failed) == (0, 1)
    run_id, failed = next(iter(_statuses(sweep_dir).items()))
    assert failed["status"] == "failed" and failed["error"] == "LAMMPS was killed by signal 9"
    restarts = {n: restart_step(run_dir / n) for n in ("restart.a.lmp", "restart.b.lmp")
                if (run_dir / n).is_file()}
    assert len(restarts) == 2
    newest, older = max(restarts, key=restarts.get), min(restarts, key=restarts.get)
    assert restarts[newest] >= 3000 and restarts[newest] - restarts[older] == 1000
    # The newest one was also cut (killed during its write): the older one is the newest
    # complete restart.
    data = (run_dir / newest).read_bytes()
    (run_dir / newest).write_bytes(data[: len(data) // 2])
    # --resume alone leaves a failed run alone ...
    kept = run_sweep(load_sweep_config(toml), resume=True, printer=lambda text: None)
    assert kept.failed == 1 and _statuses(sweep_dir)[run_id]["attempts"] == 1
    # ... --retry-failed continues it from the older restart instead of from step 0.
    retry = run_sweep(load_sweep_config(toml), resume=True, retry_failed=True,
                      printer=lambda text: None)
    assert (retry.done, retry.failed) == (1, 0)
    after = _statuses(sweep_dir)[run_id]
    assert after["status"] == "done" and after["attempts"] == 2
    assert after["resumed_from_step"] == restarts[older]
    assert after["history"][0]["status"] == "failed"
    assert after["history"][-1]["retry_of_failed"] is True
    assert after["history"][-1]["resumed_from_step"] == restarts[older]
    assert after["history"][-1]["skipped_restarts"] == [
        f"{newest} (step {restarts[newest]}, incomplete)"]
    assert _dump_steps(run_dir / "dump.lammpstrj") == list(range(100, 30101, 100))
    assert "resuming from restart" in (run_dir / "log.lammps").read_text()
    assert (run_dir / "log.attempt1.lammps").is_file()


def test_run_loop_reports_each_run_to_its_source_and_stops_a_run_on_interrupt(tmp_path):
    """The one run loop: every ended run goes back to the source; SIGTERM stops the child."""
    from ionmd.driver.run_lifecycle import SweepInterrupted, run_loop

    toml = _write_toml(tmp_path, f'lj = {LJ}\nghost = "ghost.pt"', temps="[900]")
    config = load_sweep_config(toml, allow_missing_models=True)
    fake = tmp_path / "fake_lmp"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    config.lmp = str(fake)
    runs, todo = prepare_sweep(config)
    by_id = {r.id: r for r in runs}

    class Source:
        def __init__(self) -> None:
            self.queue = ["ghost/900K/seed1", "lj/900K/seed1", "lj/900K/seed2"]
            self.finished: list[tuple[str, str]] = []
            self.idles = 0

        def next_run(self, finished):
            if finished is not None:
                self.finished.append((finished.id, finished.status))
            return by_id[self.queue.pop(0)] if self.queue else None

        def idle(self) -> None:
            self.idles += 1
            if self.idles == 5:
                raise SweepInterrupted("received signal 15")
            time.sleep(0.05)

    source = Source()
    with pytest.raises(SweepInterrupted):
        run_loop(config, source, 1, None, 0)
    # The ghost run failed at once and was handed back; the lj run was stopped mid-run.
    assert source.finished == [("ghost/900K/seed1", "failed")]
    assert source.queue == ["lj/900K/seed2"]
    stopped = read_status(config.sweep_dir / by_id["lj/900K/seed1"].dir / "status.json",
                          "lj/900K/seed1")
    assert stopped.status == "interrupted" and stopped.history[-1]["status"] == "interrupted"
    assert _wait_gone(config.sweep_dir, 10.0) == []  # the (fake) LAMMPS child is gone
    assert not run_busy(config.sweep_dir / stopped.dir)  # and its lock released


def test_progress_counts_failed_runs_queued_for_retry_as_waiting():
    """A failed run queued by --retry-failed keeps status "failed" until it starts: it is
    still left to do, so the progress line counts it as waiting and the ETA is not 0."""
    from ionmd.driver.mpi_dispatch import _Progress
    from ionmd.driver.sweepdir import RunRecord

    runs = {f"lj/900K/seed{i}": RunRecord(id=f"lj/900K/seed{i}", model="lj", T_K=900.0, seed=i,
                                           dir=f"lj/900K/seed{i}", status=s)
            for i, s in enumerate(["done", "failed", "failed", "running"], start=1)}
    lines: list[str] = []
    progress = _Progress(lines.append, n_total=4, n_groups=1)
    progress.walls.append(3600.0)  # one finished run took an hour
    progress.report(runs, 2, force=True)  # the two failed runs are in the queue
    assert "1/4 done, 1 running, 2 failed, 2 waiting; ETA 03:00:00" in lines[-1]
    # Once the queue is empty and nothing runs, nothing is left.
    runs["lj/900K/seed4"].status = "done"
    progress.report(runs, 0, force=True)
    assert lines[-1].endswith("0 waiting; ETA 00:00:00")
