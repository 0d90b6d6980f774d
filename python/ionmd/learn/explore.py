"""Exploration MD with the whole committee, through the sweep machinery.

Each iteration writes ``iter.NNN/explore/sweep.toml``: one model entry
``committee = [m0.pt, m1.pt, ...]`` (the first drives the dynamics, all K are
evaluated every ``every`` steps and ``pair_style mlip/torch ... deviation every
model_devi.out`` writes the deviation), the structures x temperatures x seeds of
``[explore]``, and a dump every ``every`` steps of all atoms. ``ionmd sweep``
runs it as a child process (``mpirun -np ranks`` when ``explore.ranks > 1``), so
a crash of LAMMPS or of the model never takes down the learning loop, and a
rerun resumes the sweep (``--resume``) without redoing finished runs.

No restart files are written inside a run: the pair style opens the deviation
file anew when LAMMPS starts, so a run resumed from the middle would lose the
deviation lines of its first part. An interrupted exploration run therefore
starts again from its beginning (runs are short).

Frames are matched to deviation lines by step. A run that failed (lost atoms,
NaN: the committee drove the system somewhere unphysical) still gives the
frames it wrote before it stopped.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ionmd.driver.potential import DEVIATION_FILE
from ionmd.driver.runner import child_env
from ionmd.driver.sweepdir import index_path, read_index
from ionmd.errors import IonmdError
from ionmd.lammpsio.dump import iter_dump
from ionmd.tomlconfig import dumps


@dataclass
class ExploredFrame:
    """One explored frame: where it comes from and its committee deviation.

    Attributes
    ----------
    run
        Sweep run id (``committee/<T>K/seed<k>``, prefixed by the structure).
    step
        MD step of the frame.
    time_ps
        Time since the start of the production (ps).
    T_K
        Target temperature of the run (K).
    max_devi_f_eV_A
        Max over atoms of the committee force deviation (eV/Å).
    """

    run: str
    step: int
    time_ps: float
    T_K: float
    max_devi_f_eV_A: float

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict."""
        return asdict(self)


def sweep_toml_text(explore: dict[str, Any], models: list[Path]) -> str:
    """Return the text of the exploration ``sweep.toml`` for ``models`` (first drives the MD).

    Parameters
    ----------
    explore
        The validated ``[explore]`` table of the learning config.
    models
        Exported TorchScript committee members.
    """
    every = int(explore["every"])
    n_total = int(explore["n_equil"]) + int(explore["n_prod"])
    md: dict[str, Any] = {
        "dt_fs": float(explore["dt_fs"]), "n_equil": int(explore["n_equil"]),
        "n_prod": int(explore["n_prod"]), "dump_every": every, "deviation_every": every,
        "thermo_every": every, "restart_every": n_total + 1,
        "thermostat": explore["thermostat"], "ensemble": explore["ensemble"],
    }
    for key in ("P_bar", "tdamp_fs", "pdamp_fs"):
        if explore.get(key) is not None:
            md[key] = float(explore[key])
    structure = explore.get("structure")
    return dumps({
        "name": "explore", "sweep_dir": ".",
        "temperatures_K": [float(t) for t in explore["temperatures_K"]],
        "seeds": list(explore["seeds"]),
        "structure": None if structure is None else str(structure),
        "models": {"committee": [str(m) for m in models]},
        "md": md,
        "run": {"timeout_s": float(explore.get("timeout_s") or 0.0), "lmp": explore.get("lmp") or None},
        "structures": dict(explore["structures"]) if explore.get("structures") else None,
    })


def _term_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the sweep if ``ionmd learn`` dies (PR_SET_PDEATHSIG).

    The sweep then marks its runs interrupted and stops its LAMMPS children, so a
    killed learning run leaves nothing running behind it.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def run_exploration(explore: dict[str, Any], models: list[Path], out_dir: Path,
                    log_name: str = "sweep.log") -> dict[str, Any]:
    """Write ``out_dir/sweep.toml`` and run it with ``ionmd sweep`` (resuming if begun).

    Returns
    -------
    dict
        ``n_runs``, ``n_done``, ``n_failed`` and the failed runs' errors.

    Raises
    ------
    IonmdError
        If the sweep could not run at all (no ``sweep.json``), naming its log.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    toml = out_dir / "sweep.toml"
    toml.write_text(sweep_toml_text(explore, models))
    cmd = [sys.executable, "-m", "ionmd", "sweep", str(toml), "--progress-every", "60"]
    if (out_dir / "sweep.json").is_file():
        cmd.append("--resume")
    ranks = int(explore.get("ranks") or 1)
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks)] + cmd
    with open(out_dir / log_name, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=out_dir, env=child_env(), stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              preexec_fn=_term_with_parent)
    if not index_path(out_dir).is_file():
        raise IonmdError(f"exploration sweep did not run (exit {proc.returncode}); "
                         f"see {out_dir / log_name}")
    runs = read_index(out_dir).runs
    failed = {r.id: r.error for r in runs if r.status == "failed"}
    not_finished = [r.id for r in runs if r.status not in ("done", "failed")]
    if not_finished:
        raise IonmdError(f"exploration sweep stopped with unfinished runs {not_finished} "
                         f"(exit {proc.returncode}); see {out_dir / log_name}")
    return {"n_runs": len(runs), "n_done": sum(r.status == "done" for r in runs),
            "n_failed": len(failed), "failed_runs": failed}


def read_deviation(path: Path) -> dict[int, float]:
    """Return ``{step: max_devi_f}`` (eV/Å) from a ``model_devi.out`` file (5th column).

    Comment lines and a torn last line are skipped.
    """
    out: dict[int, float] = {}
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) < 7 or line.lstrip().startswith("#"):
            continue
        try:
            out[int(words[0])] = float(words[4])
        except ValueError:
            continue
    return out


def _atoms(frame, type_map: dict[str, str]) -> Atoms:
    if frame.elements is not None:
        symbols = [str(s) for s in frame.elements]
    else:
        symbols = [type_map[str(int(t))] for t in frame.types]
    atoms = Atoms(symbols, positions=frame.positions_A - frame.origin_A, cell=frame.cell_A,
                  pbc=True)
    atoms.wrap()
    return atoms


def collect_frames(explore_dir: Path, with_atoms: bool = True
                   ) -> tuple[list[ExploredFrame], list[Atoms]]:
    """Return every explored frame that has a deviation line, with its structure.

    Frames of every run in ``explore_dir/sweep.json`` (done or failed) are read from
    the dump and matched by step to ``model_devi.out``; positions are wrapped
    into the cell. With ``with_atoms=False`` the structures are not kept.
    """
    index = read_index(explore_dir)
    frames: list[ExploredFrame] = []
    structures: list[Atoms] = []
    for run in index.runs:
        run_dir = index.run_dir(run)
        devi = read_deviation(run_dir / DEVIATION_FILE)
        dump = explore_dir / run.dump
        if not devi or not dump.is_file():
            continue
        dt_ps = float(run.dt_fs) / 1000.0
        first_step = None
        try:
            for frame in iter_dump(dump):
                if frame.timestep not in devi:
                    continue
                first_step = frame.timestep if first_step is None else first_step
                frames.append(ExploredFrame(run.id, int(frame.timestep),
                                            (frame.timestep - first_step) * dt_ps,
                                            float(run.T_K), devi[frame.timestep]))
                if with_atoms:
                    structures.append(_atoms(frame, run.type_map))
        except IonmdError:
            continue  # a dump cut by a crash: keep the frames read so far
    return frames, structures


def deviation_summary(frames: list[ExploredFrame]) -> dict[str, float]:
    """Return min/median/max of the max force deviation (eV/Å) over ``frames``."""
    if not frames:
        return {}
    d = np.array([f.max_devi_f_eV_A for f in frames])
    d = d[np.isfinite(d)]
    if not len(d):
        return {"max_devi_f_median_eV_A": math.nan}
    return {"max_devi_f_min_eV_A": float(d.min()), "max_devi_f_median_eV_A": float(np.median(d)),
            "max_devi_f_max_eV_A": float(d.max())}
