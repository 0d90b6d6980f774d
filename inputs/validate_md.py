"""Stability check of a bundled model: NVT MD through ``pair_style mlip/torch`` in LAMMPS.

Runs the 65-atom LiF interstitial cell (``inputs/structures/lif_2x2x2_Li_interstitial.data``)
at a target temperature with a Nose-Hoover thermostat (1 fs steps), through the ``lmp``
executable of the active environment, and writes ``OUT/report.json`` with:

* the mean and standard deviation of the temperature (K) and of the potential and
  total energies (eV) over the analysis window (the last ``--window-ps``);
* the drift of the Nose-Hoover conserved energy (eV per atom per ns);
* the number of atoms at the end (LAMMPS stops with an error on lost atoms);
* the smallest interatomic distance (Å) over trajectory snapshots every 1 ps;
* the LAMMPS loop time and the cost in µs/atom/step, with ``uptime`` before and after.

Usage (from the repository root, venv active; long runs under ``nice``)::

    OMP_NUM_THREADS=1 nice -n 10 python inputs/validate_md.py inputs/models/lif_mace.pt \
        -o scratch/md_mace --steps 50000

The run fails (exit code 1) if the temperature is off target by more than 5 %, if
any thermo value is not finite, or if two atoms come closer than 1.0 Å.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STRUCTURE = ROOT / "inputs" / "structures" / "lif_2x2x2_Li_interstitial.data"

INPUT = """\
units           metal
atom_style      atomic
boundary        p p p
read_data       {structure}
pair_style      mlip/torch {model}
pair_coeff      * * Li F
neighbor        1.0 bin
neigh_modify    every 1 delay 0 check yes
timestep        0.001
velocity        all create {T} {seed} mom yes rot yes dist gaussian
fix             nvt all nvt temp {T} {T} 0.1
variable        econs equal etotal+f_nvt
thermo_style    custom step time temp pe ke etotal v_econs press atoms
thermo          {thermo}
thermo_modify   lost error norm no flush yes
variable        is_nan equal "temp != temp"
fix             nan_guard all halt {thermo} v_is_nan == 1 error hard message yes
dump            snap all custom {dump_every} {dump} id type x y z
dump_modify     snap sort id
run             {steps}
"""


@dataclass
class MDReport:
    """Outcome of one validation run (JSON-serialisable); energies in eV, T in K."""

    model: str
    T_target_K: float
    steps: int
    dt_fs: float
    window_ps: float
    T_mean_K: float
    T_std_K: float
    pe_mean_eV: float
    pe_std_eV: float
    etotal_mean_eV: float
    econs_drift_meV_atom_ns: float
    natoms_start: int
    natoms_end: int
    min_distance_A: float
    all_finite: bool
    loop_time_s: float
    cost_us_per_atom_step: float
    uptime_before: str
    uptime_after: str
    ok: bool


def parse_thermo(log: Path) -> tuple[list[str], np.ndarray, float]:
    """Return (column names, thermo rows, loop time in s) of the last run in a LAMMPS log."""
    header: list[str] = []
    rows: list[list[float]] = []
    loop = math.nan
    reading = False
    for line in log.read_text().splitlines():
        words = line.split()
        if words[:2] == ["Step", "Time"]:
            header, rows, reading = words, [], True
            continue
        if reading:
            if line.startswith("Loop time"):
                loop = float(re.findall(r"Loop time of ([-0-9.eE+]+)", line)[0])
                reading = False
                continue
            try:
                values = [float(w) for w in words]
            except ValueError:
                continue
            if len(values) == len(header):
                rows.append(values)
    return header, np.array(rows, dtype=float), loop


def min_distance_A(dump: Path, box_A: float) -> float:
    """Smallest interatomic distance (Å, minimum image, cubic box) over all dump snapshots."""
    lines = dump.read_text().splitlines()
    best = math.inf
    i = 0
    while i < len(lines):
        if lines[i].startswith("ITEM: NUMBER OF ATOMS"):
            n = int(lines[i + 1])
            start = i + 7
            xyz = np.array([[float(v) for v in ln.split()[2:5]] for ln in lines[start : start + n]])
            d = xyz[:, None, :] - xyz[None, :, :]
            d -= box_A * np.round(d / box_A)
            r = np.sqrt((d**2).sum(-1))
            r[np.diag_indices(n)] = np.inf
            best = min(best, float(r.min()))
            i = start + n
        else:
            i += 1
    return best


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run(
    model: Path, out: Path, T_K: float, steps: int, window_ps: float, seed: int, lmp: str
) -> MDReport:
    """Run the NVT validation and return its report (also written to ``out/report.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    thermo = 100
    (out / "in.md").write_text(
        INPUT.format(
            structure=STRUCTURE,
            model=model.resolve(),
            T=T_K,
            seed=seed,
            thermo=thermo,
            dump=out / "snapshots.lammpstrj",
            dump_every=1000,
            steps=steps,
        )
    )
    before = _uptime()
    proc = subprocess.run(
        [lmp, "-in", "in.md", "-log", "log.lammps", "-screen", "none"], cwd=out, check=False
    )
    after = _uptime()
    header, rows, loop = parse_thermo(out / "log.lammps")
    if proc.returncode != 0 or rows.size == 0:
        raise SystemExit(f"lmp failed (exit {proc.returncode}); see {out / 'log.lammps'}")
    col = {name: k for k, name in enumerate(header)}
    t_ps = rows[:, col["Time"]]
    win = t_ps >= t_ps[-1] - window_ps
    temp, pe = rows[win, col["Temp"]], rows[win, col["PotEng"]]
    natoms = rows[:, col["Atoms"]]
    slope_eV_ps = np.polyfit(t_ps[win], rows[win, col["v_econs"]], 1)[0]
    finite = bool(np.all(np.isfinite(rows)))
    dmin = min_distance_A(out / "snapshots.lammpstrj", 8.06)
    report = MDReport(
        model=str(model),
        T_target_K=T_K,
        steps=int(rows[-1, col["Step"]]),
        dt_fs=1.0,
        window_ps=window_ps,
        T_mean_K=float(temp.mean()),
        T_std_K=float(temp.std()),
        pe_mean_eV=float(pe.mean()),
        pe_std_eV=float(pe.std()),
        etotal_mean_eV=float(rows[win, col["TotEng"]].mean()),
        econs_drift_meV_atom_ns=float(slope_eV_ps * 1e6 / natoms[0]),
        natoms_start=int(natoms[0]),
        natoms_end=int(natoms[-1]),
        min_distance_A=dmin,
        all_finite=finite,
        loop_time_s=loop,
        cost_us_per_atom_step=float(loop / steps / natoms[0] * 1e6),
        uptime_before=before,
        uptime_after=after,
        ok=False,
    )
    report.ok = (
        finite
        and report.natoms_end == report.natoms_start
        and abs(report.T_mean_K - T_K) < 0.05 * T_K
        and dmin > 1.0
    )
    (out / "report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path, help="exported model (.pt MACE or .pth DeePMD)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    p.add_argument("--T", type=float, default=900.0, help="target temperature in K")
    p.add_argument("--steps", type=int, default=50000, help="MD steps of 1 fs")
    p.add_argument("--window-ps", type=float, default=40.0, help="analysis window (last ps)")
    p.add_argument("--seed", type=int, default=4928459, help="velocity seed")
    p.add_argument("--lmp", default="lmp", help="LAMMPS executable")
    a = p.parse_args(argv)
    report = run(a.model, a.out, a.T, a.steps, a.window_ps, a.seed, a.lmp)
    print(json.dumps(asdict(report), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
