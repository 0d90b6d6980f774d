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

import shlex
from dataclasses import dataclass
from pathlib import Path

from ionmd.driver.sweep_config import SweepConfig
from ionmd.errors import InputError


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
            raise InputError(f"--tasks-per-node {tasks} must be a multiple of --ranks-per-run "
                             f"{self.ranks_per_run}")
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
        f"#SBATCH --time={options.time}",
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
