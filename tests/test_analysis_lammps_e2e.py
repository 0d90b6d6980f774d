"""End to end: a short classical LAMMPS run writes a dump (contract 3) that ionmd analyses.

The unwrapped positions ionmd reads must reproduce LAMMPS's own ``compute msd``
(single time origin, no centre-of-mass correction) at every dumped step, and the
CLI must return a finite D with its uncertainty from the same dump.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess

import numpy as np
import pytest

from ionmd.analysis.cli import register
from ionmd.analysis.trajectory import Selection, load_trajectory

pytestmark = pytest.mark.skipif(shutil.which("lmp") is None, reason="needs the lmp executable")

INPUT = """
units metal
atom_style atomic
boundary p p p
lattice fcc 6.2
region box block 0 3 0 3 0 3
create_box 2 box
create_atoms 1 box
set type 1 type/fraction 2 0.5 4821
mass * 39.95
pair_style lj/cut 8.0
pair_coeff * * 0.0104 3.40
velocity all create 300.0 9173 mom yes
fix nvt all nvt temp 300.0 300.0 0.5
timestep 0.005
group li type 1
compute msd li msd
thermo_style custom step temp c_msd[4]
thermo 20
fix out all print 20 "$(step) $(c_msd[4]:%.10f)" file msd.txt screen no
dump d all custom 20 dump.lammpstrj id type element xu yu zu
dump_modify d sort id element Li F format float %.8f
run 2000
"""


def test_lammps_dump_matches_lammps_msd_and_cli_gives_D(tmp_path):
    (tmp_path / "in.lammps").write_text(INPUT)
    proc = subprocess.run(["lmp", "-in", "in.lammps", "-log", "log.lammps", "-screen", "none"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    traj = load_trajectory(tmp_path / "dump.lammpstrj", Selection(species=["Li"]), dt_fs=5.0,
                           drift_correction=False)
    assert traj.n_frames == 101 and 40 < traj.n_ions < 70
    np.testing.assert_allclose(traj.time_ps[-1], 10.0)
    ref = np.loadtxt(tmp_path / "msd.txt", comments="#")
    ours = ((traj.positions_A - traj.positions_A[0]) ** 2).sum(axis=2).mean(axis=1)
    np.testing.assert_allclose(ours, ref[: traj.n_frames, 1], rtol=1e-6, atol=1e-6)
    assert ours[-1] > 20.0  # the fluid really diffuses

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "d.json"
    args = parser.parse_args(["diffusion", str(tmp_path / "dump.lammpstrj"), "--species", "Li",
                              "--dt-fs", "5", "--json", str(out)])
    assert args.func(args) == 0
    d = json.loads(out.read_text())
    assert d["n_frames"] == 101 and d["species"] == "Li"
    assert 0 < d["D_err_cm2_s"] < 0.5 * d["D_cm2_s"]
    # single-origin slope from LAMMPS over the same window, as a loose cross-check
    t0, t1 = d["fit_window_ps"]
    sel = (ref[:, 0] * 0.005 >= t0) & (ref[:, 0] * 0.005 <= t1)
    slope = np.polyfit(ref[sel, 0] * 0.005, ref[sel, 1], 1)[0]
    assert 0.3 < d["D_cm2_s"] / (slope / 6 * 1e-4) < 3.0
