"""Write a Slurm batch script that runs a sweep on a cluster.

The script starts one MPI job of ``nodes x tasks_per_node`` ranks running
``ionmd sweep --resume``; each group of ``ranks_per_run`` ranks runs its LAMMPS
runs as node-local child jobs (``mpirun -launcher fork`` keeps them on the node of
their group). With GPUs, one group per GPU: ``tasks_per_node = gpus_per_node x
ranks_per_run`` and each group sees only its GPU (``CUDA_VISIBLE_DEVICES``).
Because the script always passes ``--resume``, resubmitting it (or a requeue
after a time limit) continues the sweep without redoing finished runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ionmd.driver.sweep_config import SweepConfig
from ionmd.errors import InputError

_SLURM_TIME_RE = re.compile(
    r"^(?:(?P<d>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"  # D-HH[:MM[:SS]]
    r"|(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)"                           # HH:MM:SS
    r"|(?P<mm>\d+)(?::(?P<ss>\d+))?)$")                               # MM[:SS]
_FRIENDLY_TIME_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?:in)?)?(?:(\d+)s)?$")
_TIME_FORMS = ("Slurm's MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, or a duration "
               "such as 2h, 90m, 1h30m or 1d12h")


def slurm_time(text: str) -> str:
    """Return a wall-time limit in Slurm's ``[D-]HH:MM:SS`` form, or raise :class:`InputError`.

    Accepts Slurm's own forms (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM``, ``D-HH:MM:SS``; the first field may be any size, the others
    are bounded: hours after a day < 24, minutes and seconds < 60) and
    durations built from ``d``, ``h``, ``m`` and ``s`` (``2h``, ``90m``,
    ``1d12h``, ``1h30m``). ``UNLIMITED`` and ``infinite`` pass through.
    """
    raw = str(text).strip()
    if raw.lower() in ("unlimited", "infinite"):
        return raw.upper() if raw.lower() == "unlimited" else raw.lower()
    word = raw.lower().replace(" ", "")
    seconds = None
    match = _SLURM_TIME_RE.match(word)
    if match:
        g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        bounds = [("dh", 24), ("dm", 60), ("ds", 60), ("m", 60), ("s", 60), ("ss", 60)]
        for key, limit in bounds:
            if g.get(key, 0) >= limit:
                raise InputError(f"--time '{raw}': field {g[key]} is out of range (must be "
                                 f"< {limit}); use {_TIME_FORMS}")
        seconds = (g.get("d", 0) * 86400 + (g.get("dh", 0) + g.get("h", 0)) * 3600
                   + (g.get("dm", 0) + g.get("m", 0) + g.get("mm", 0)) * 60
                   + g.get("ds", 0) + g.get("s", 0) + g.get("ss", 0))
    else:
        match = _FRIENDLY_TIME_RE.match(word)
        if match and any(match.groups()):
            d, h, m, s = (int(v or 0) for v in match.groups())
            seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds is None:
        raise InputError(f"--time '{raw}' is not a time limit Slurm accepts: use {_TIME_FORMS}")
    if seconds <= 0:
        raise InputError(f"--time '{raw}' must be longer than zero")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    hms = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{hms}" if days else hms


_SBATCH_WORD_RE = re.compile(r"^[A-Za-z0-9_.,:+@%=-]+$")


@dataclass
class SlurmOptions:
    """Resources of the batch job."""

    nodes: int = 1
    gpus_per_node: int = 0
    ranks_per_run: int = 1
    tasks_per_node: int | None = None
    time: str = "24:00:00"
    partition: str | None = None
    account: str | None = None
    child_launcher: str = "mpirun -launcher fork -np {ranks}"

    def validate(self) -> int:
        """Check the options; return the number of MPI tasks per node."""
        for key in ("nodes", "gpus_per_node", "ranks_per_run", "tasks_per_node"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError(f"--{key.replace('_', '-')} must be a whole number, "
                                 f"got {value!r}")
        slurm_time(self.time)
        for key in ("partition", "account"):
            value = getattr(self, key)
            if value is not None and not _SBATCH_WORD_RE.match(value):
                raise InputError(f"--{key} '{value}' is not a valid Slurm {key} name "
                                 "(letters, digits and _.,:+@%=- only)")
        if self.nodes < 1:
            raise InputError(f"--nodes must be >= 1, got {self.nodes}")
        if self.gpus_per_node < 0:
            raise InputError(f"--gpus-per-node must be >= 0, got {self.gpus_per_node}")
        if self.ranks_per_run < 1:
            raise InputError(f"--ranks-per-run must be >= 1, got {self.ranks_per_run}")
        if "{ranks}" not in self.child_launcher:
            raise InputError("--child-launcher must contain {ranks}")
        tasks = self.tasks_per_node
        if tasks is None:
            tasks = (self.gpus_per_node or 1) * self.ranks_per_run
        if tasks < 1 or tasks % self.ranks_per_run:
            raise InputError(f"--tasks-per-node {tasks} must be a positive multiple of "
                             f"--ranks-per-run {self.ranks_per_run}")
        if self.gpus_per_node and tasks // self.ranks_per_run < self.gpus_per_node:
            raise InputError(
                f"--tasks-per-node {tasks} with --ranks-per-run {self.ranks_per_run} gives "
                f"{tasks // self.ranks_per_run} group(s) per node for --gpus-per-node "
                f"{self.gpus_per_node}: GPUs would sit idle; use --tasks-per-node "
                f"{self.gpus_per_node * self.ranks_per_run} (one group per GPU)")
        return tasks


def render_sbatch(config: SweepConfig, options: SlurmOptions) -> str:
    """Return the text of the batch script for ``config``."""
    tasks = options.validate()
    groups = options.nodes * tasks // options.ranks_per_run
    lines = [
        "#!/bin/bash",
        f"# Slurm batch script for the ionmd sweep '{config.name}' ({config.path}).",
        "# Written by `ionmd sweep --slurm`. Resubmit it to continue an unfinished sweep:",
        "# it passes --resume, so finished runs are never redone.",
        f"#SBATCH --job-name=ionmd-{config.name}",
        f"#SBATCH --nodes={options.nodes}",
        f"#SBATCH --ntasks-per-node={tasks}",
        "#SBATCH --cpus-per-task=1",
        f"#SBATCH --time={slurm_time(options.time)}",
        f"#SBATCH --output=ionmd-{config.name}-%j.out",
    ]
    if options.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={options.gpus_per_node}")
    if options.partition:
        lines.append(f"#SBATCH --partition={options.partition}")
    if options.account:
        lines.append(f"#SBATCH --account={options.account}")
    sweep_cmd = [
        "ionmd", "sweep", str(config.path), "--resume",
        "--ranks-per-run", str(options.ranks_per_run),
        "--sweep-dir", str(config.sweep_dir),
        "--launcher", options.child_launcher,
    ]
    if options.gpus_per_node:
        sweep_cmd += ["--gpus-per-node", str(options.gpus_per_node)]
    lines += [
        "",
        "set -euo pipefail",
        f"mkdir -p {shlex.quote(str(config.sweep_dir))}",
        "export OMP_NUM_THREADS=1",
        "# Activate the environment that has ionmd and LAMMPS, e.g.:",
        "# source /path/to/venv/bin/activate",
        "",
        f"# {options.nodes} node(s) x {tasks} rank(s) = {groups} group(s) of "
        f"{options.ranks_per_run} rank(s); each group runs one LAMMPS run at a time.",
        "mpirun -np \"$SLURM_NTASKS\" " + " ".join(shlex.quote(c) for c in sweep_cmd),
        "",
    ]
    return "\n".join(lines)


def write_sbatch(config: SweepConfig, path: str | Path, options: SlurmOptions) -> Path:
    """Write the batch script to ``path`` (mode 755) and return it."""
    text = render_sbatch(config, options)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path
