"""Reading a LAMMPS multi-partition NEB run: the universe log and the replica logs.

The universe log (``log.lammps`` with ``-log log.lammps``) holds one table per NEB
stage (plain, then climbing image). Each row is::

    Step MaxReplicaForce MaxAtomForce GradV0 GradV1 GradVc EBF EBR RDT RD1 PE1 ... RDN PEN

with the barriers EBF/EBR (eV), the path length RDT (Å), the normalised reaction
coordinate RDk and potential energy PEk (eV) of each replica. EBF and EBR are
printed with 8 significant digits of the barrier itself, the PEk with 8 digits of the
total energy (about 1e-4 eV for 200 atoms), so barriers are taken from EBF/EBR. Each replica log
(``log.lammps.<k>``) states the minimiser's ``Stopping criterion`` per stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ionmd.errors import IonmdError


@dataclass
class NEBStage:
    """One NEB stage's table: steps and per-row columns."""

    steps: list[int] = field(default_factory=list)
    max_replica_force_eV_A: list[float] = field(default_factory=list)
    max_atom_force_eV_A: list[float] = field(default_factory=list)
    path_length_A: list[float] = field(default_factory=list)
    reaction_coordinate: list[list[float]] = field(default_factory=list)
    energies_eV: list[list[float]] = field(default_factory=list)
    barrier_forward_eV: list[float] = field(default_factory=list)
    barrier_backward_eV: list[float] = field(default_factory=list)


def parse_universe_log(path: Path) -> list[NEBStage]:
    """Return the NEB stages found in the universe log ``path`` (in order)."""
    if not path.is_file():
        raise IonmdError(f"NEB log {path} not found: LAMMPS did not start the NEB")
    stages: list[NEBStage] = []
    cols: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        tok = line.split()
        if tok[:2] == ["Step", "MaxReplicaForce"]:
            cols = tok
            stages.append(NEBStage())
            continue
        if not cols or len(tok) != len(cols) or not re.fullmatch(r"\d+", tok[0]):
            continue
        try:
            vals = [float(t) for t in tok]
        except ValueError:
            continue
        row = dict(zip(cols, vals, strict=True))
        n = sum(1 for c in cols if re.fullmatch(r"PE\d+", c))
        st = stages[-1]
        st.steps.append(int(row["Step"]))
        st.max_replica_force_eV_A.append(row["MaxReplicaForce"])
        st.max_atom_force_eV_A.append(row["MaxAtomForce"])
        st.path_length_A.append(row["RDT"])
        st.reaction_coordinate.append([row[f"RD{k}"] for k in range(1, n + 1)])
        st.energies_eV.append([row[f"PE{k}"] for k in range(1, n + 1)])
        st.barrier_forward_eV.append(row["EBF"])
        st.barrier_backward_eV.append(row["EBR"])
    stages = [s for s in stages if s.steps]
    if not stages:
        raise IonmdError(f"no NEB table in {path}: the run stopped before its first step")
    return stages


def stopping_criteria(replica_log: Path) -> list[str]:
    """The ``Stopping criterion`` of each minimisation stage in a replica log."""
    if not replica_log.is_file():
        return []
    text = replica_log.read_text(errors="replace")
    return [m.strip() for m in re.findall(r"Stopping criterion = (.+)", text)]


def lammps_errors(workdir: Path) -> list[str]:
    """``ERROR`` lines from the screen and log files of a run, de-duplicated."""
    seen: list[str] = []
    for p in sorted(workdir.glob("screen*")) + sorted(workdir.glob("log.lammps*")):
        for line in p.read_text(errors="replace").splitlines():
            if "ERROR" in line and line.strip() not in seen:
                seen.append(line.strip())
    return seen


def read_dump_positions_A(path: Path) -> np.ndarray:
    """Positions (Å, id order) from a ``write_dump ... custom id type x y z`` file."""
    lines = path.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("ITEM: ATOMS"))
    cols = lines[i].split()[2:]
    arr = np.array([ln.split() for ln in lines[i + 1 :] if ln.strip()], dtype=float)
    arr = arr[np.argsort(arr[:, cols.index("id")])]
    return arr[:, [cols.index("x"), cols.index("y"), cols.index("z")]]


def read_coords_A(path: Path) -> np.ndarray:
    """Positions (Å, id order) from a ``coords.<k>`` replica file written for ``neb ... each``."""
    lines = path.read_text().split("\n")
    n = int(lines[0].split()[0])
    arr = np.array([ln.split() for ln in lines[1 : n + 1]], dtype=float)
    return arr[np.argsort(arr[:, 0])][:, 1:4]


def partition_energies_eV(workdir: Path) -> tuple[list[float], list[float]]:
    """Energies (eV) of every replica at the first and at the last printed NEB step."""
    stages = parse_universe_log(workdir / "log.lammps")
    return stages[0].energies_eV[0], stages[-1].energies_eV[-1]
