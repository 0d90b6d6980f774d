"""The MD stage of ``ionmd study`` (and ``ionmd assess``): a sweep through ``ionmd.driver``.

The sweep runs as ``mpirun -np N python -m ionmd sweep sweep.toml --resume
--ranks-per-run 1``: N groups of one rank, each running one LAMMPS child at a time
(on small cells one rank per run is fastest; see docs/driver.md). ``--resume``
makes a rerun skip finished runs and continue interrupted ones from their restart
files. This process only watches the runs' ``status.json`` files and logs to show
progress.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ionmd.driver.runner import child_env
from ionmd.driver.sweep_config import load_sweep_config, plan_runs
from ionmd.errors import IonmdError
from ionmd.study.progress import DemoProgress

_THERMO_RE = re.compile(r"^\s*(\d+)(\s+[-+0-9.eE]+){4,}\s*$")
POLL_S = 2.0


@dataclass
class SweepOutcome:
    """What the MD stage left: the sweep directory and run counts."""

    sweep_dir: Path
    n_runs: int
    done: int
    failed: int
    skipped_done: int
    wall_s: float
    failures: list[str]


def last_thermo_step(log: Path) -> int | None:
    """Timestep of the last thermo line of a LAMMPS log (None if none yet)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None
    step = None
    for line in tail.splitlines():
        m = _THERMO_RE.match(line)
        if m:
            step = int(m.group(1))
    return step


def _read_status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _sweep_state(sweep_dir: Path, runs: list, steps_per_run: int,
                 weights: dict[str, float]) -> tuple[dict[str, int], float]:
    """Counts of run states and the work done (cost-weighted steps) of every run."""
    counts = {"done": 0, "running": 0, "failed": 0, "waiting": 0}
    work = 0.0
    for r in runs:
        status = _read_status(sweep_dir / r.dir / "status.json").get("status", "pending")
        weight = weights.get(r.model, 1.0)
        if status in ("done", "failed"):
            counts[status] += 1
            work += weight * steps_per_run
            continue
        counts["running" if status == "running" else "waiting"] += 1
        step = last_thermo_step(sweep_dir / r.dir / "log.lammps")
        if step:
            work += weight * min(step, steps_per_run)
    return counts, work


def launch_sweep(toml: Path, logs: Path, n_ranks: int, ranks_per_run: int,
                 progress: DemoProgress, steps_per_run: int,
                 weights: dict[str, float] | None = None,
                 retry_failed: bool = False) -> SweepOutcome:
    """Run (or resume) the sweep ``toml`` as ``mpirun -np n_ranks ionmd sweep --resume``.

    Parameters
    ----------
    toml
        The sweep definition (``ionmd sweep`` schema).
    logs
        Directory of ``sweep.log``.
    n_ranks, ranks_per_run
        MPI ranks of the sweep and ranks of each LAMMPS run (``n_ranks // ranks_per_run``
        runs at a time).
    progress
        Where progress lines go; its current stage is the MD stage.
    steps_per_run
        MD steps of each run, for the share of work done.
    weights
        Relative cost per step of each model (default 1), for the time left.
    retry_failed
        Run again the runs that failed in an earlier invocation (``--retry-failed``).

    Raises
    ------
    IonmdError
        ``mpirun`` is missing, or the sweep ended without finishing any run.
    KeyboardInterrupt
        On Ctrl-C / SIGTERM, after the sweep marked its running runs interrupted.
    """
    weights = weights or {}
    config = load_sweep_config(toml)
    runs = plan_runs(config)
    sweep_dir = config.sweep_dir
    total = sum(weights.get(r.model, 1.0) for r in runs) * steps_per_run
    counts, work0 = _sweep_state(sweep_dir, runs, steps_per_run, weights)
    skipped = counts["done"]
    progress.scale_prior(max(total - work0, 0.0) / total)  # a resume has less left to do
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise IonmdError("mpirun not found on PATH: the sweep runs over MPI "
                         "(pip install mpich, or activate the ionmd venv)")
    cmd = [mpirun, "-np", str(n_ranks), sys.executable, "-m", "ionmd", "sweep", str(toml),
           "--resume", "--ranks-per-run", str(ranks_per_run), "--progress-every", "60"]
    if retry_failed:
        cmd.append("--retry-failed")
    logs.mkdir(parents=True, exist_ok=True)
    progress.message(f"MD sweep: {len(runs)} runs ({', '.join(config.models)} x "
                     f"{len(config.temperatures_K)} temperatures x {len(config.seeds)} seeds, "
                     f"{steps_per_run} steps each), {skipped} already done; {n_ranks} MPI "
                     f"rank(s), {ranks_per_run} per run; log {logs / 'sweep.log'}")
    t0 = time.time()
    state = (sweep_dir, runs, steps_per_run, weights, total, work0)
    with open(logs / "sweep.log", "a") as log:
        log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
                                start_new_session=True)
        seen: dict[str, int] = {}
        try:
            while proc.poll() is None:
                _show(progress, *state, seen=seen)
                time.sleep(POLL_S)
        except BaseException:
            _stop(proc)
            raise
    counts, _ = _sweep_state(sweep_dir, runs, steps_per_run, weights)
    _show(progress, *state, force=True)
    failures = []
    for r in runs:
        st = _read_status(sweep_dir / r.dir / "status.json")
        if st.get("status") == "failed":
            failures.append(f"{r.id}: {st.get('error')}")
    if counts["done"] == 0:
        tail = (logs / "sweep.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise IonmdError(f"the MD sweep finished no run (exit {proc.returncode}); "
                         f"see {logs / 'sweep.log'}: {' | '.join(tail)}")
    return SweepOutcome(sweep_dir, len(runs), counts["done"], counts["failed"], skipped,
                        time.time() - t0, failures)


def _show(progress: DemoProgress, sweep_dir: Path, runs: list, steps_per_run: int,
          weights: dict[str, float], total: float, work0: float, force: bool = False,
          seen: dict[str, int] | None = None) -> None:
    """One progress line: at once when a run started or ended (``seen`` changed), else rate-limited."""
    counts, work = _sweep_state(sweep_dir, runs, steps_per_run, weights)
    if seen is not None and seen != counts:
        force = force or bool(seen)
        seen.clear()
        seen.update(counts)
    left_at_start = max(total - work0, 1e-9)
    fraction = min(1.0, max(0.0, (work - work0) / left_at_start))
    text = (f"{counts['done']}/{len(runs)} runs done, {counts['running']} running, "
            f"{counts['failed']} failed, {counts['waiting']} waiting "
            f"({100.0 * work / total:.0f}% of the steps)")
    progress.update(fraction, text, force=force)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the sweep (it marks running runs interrupted) and wait for it."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
