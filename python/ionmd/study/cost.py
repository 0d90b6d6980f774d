"""Cost of the MD, µs/atom/step, from the ``Loop time`` lines of LAMMPS logs.

LAMMPS ends every ``run`` with ``Loop time of T on P procs for S steps with N atoms``.
The cost per atom and step on one core is T * P / (S * N); over several runs (the
equilibration and production of every seed and temperature, and the earlier
attempts of resumed runs) it is sum(T * P) / sum(S * N).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

LOOP_RE = re.compile(
    r"^Loop time of\s+(?P<t>[0-9.eE+-]+)\s+on\s+(?P<p>\d+)\s+procs?\s+for\s+(?P<s>\d+)\s+steps?"
    r"\s+with\s+(?P<n>\d+)\s+atoms", re.MULTILINE)


@dataclass
class LoopTime:
    """One ``Loop time`` line: wall seconds, MPI ranks, steps and atoms."""

    wall_s: float
    procs: int
    steps: int
    atoms: int


@dataclass
class ModelCost:
    """Measured MD cost of one model, summed over its runs.

    Attributes
    ----------
    us_per_atom_step
        Core-µs per atom and step: sum(wall x ranks) / sum(steps x atoms); None if no
        step was timed.
    core_s, atom_steps
        The two sums.
    n_runs, n_loops
        Run directories and ``Loop time`` lines that contributed.
    ranks
        Distinct MPI rank counts per run seen in the logs.
    atoms
        Distinct atom counts seen.
    """

    us_per_atom_step: float | None
    core_s: float
    atom_steps: int
    n_runs: int
    n_loops: int
    ranks: list[int]
    atoms: list[int]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def loop_times(log: str | Path) -> list[LoopTime]:
    """Every ``Loop time`` line of a LAMMPS log (runs of 0 steps included)."""
    text = Path(log).read_text(errors="replace")
    return [LoopTime(float(m["t"]), int(m["p"]), int(m["s"]), int(m["n"]))
            for m in LOOP_RE.finditer(text)]


def run_logs(run_dir: Path) -> list[Path]:
    """The LAMMPS logs of a sweep run: ``log.lammps`` and those of earlier attempts."""
    return sorted(run_dir.glob("log.attempt*.lammps")) + [p for p in [run_dir / "log.lammps"]
                                                           if p.is_file()]


def model_cost(run_dirs: list[Path]) -> ModelCost:
    """Cost of the MD in ``run_dirs`` (all runs of one model), from their logs."""
    core_s, atom_steps, n_loops, used = 0.0, 0, 0, 0
    ranks: set[int] = set()
    atoms: set[int] = set()
    for run_dir in run_dirs:
        loops = [lt for log in run_logs(run_dir) for lt in loop_times(log) if lt.steps > 0]
        if loops:
            used += 1
        for lt in loops:
            core_s += lt.wall_s * lt.procs
            atom_steps += lt.steps * lt.atoms
            n_loops += 1
            ranks.add(lt.procs)
            atoms.add(lt.atoms)
    us = 1e6 * core_s / atom_steps if atom_steps else None
    return ModelCost(us, core_s, atom_steps, used, n_loops, sorted(ranks), sorted(atoms))
