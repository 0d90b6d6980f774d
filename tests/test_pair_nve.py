"""Energy conservation through pair_style mlip/torch: 10,000 NVE steps at 1 fs.

Conservation checks the forces against the energy (any inconsistency in the
adaptor, folding of ghosts or scatter shows up as drift). Bounds: fluctuation of
the total energy below 1e-3 eV/atom and a linear drift below 1e-4 eV/atom/ps.
Measured (8-atom LiF, DeePMD se_e2_a, 600 K): 1.8e-4 eV/atom and 6e-7 eV/atom/ps.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
from conftest import DEEPMD_FIXTURES, lif_small
from lammps_runner import lower_triangular, write_data


def test_nve_energy_conserved_10000_steps(tmp_path):
    atoms = lower_triangular(lif_small())
    write_data(atoms, tmp_path / "system.data", ["Li", "F"])
    (tmp_path / "in.nve").write_text(
        "units metal\natom_style atomic\nread_data system.data\n"
        f"pair_style mlip/torch {DEEPMD_FIXTURES / 'se_e2_a_tiny.pth'}\npair_coeff * * Li F\n"
        "velocity all create 600 1 mom yes rot no\ntimestep 0.001\nfix 1 all nve\n"
        "fix e all print 100 \"$(step) $(etotal:%.12e) $(temp)\" file energy.txt screen no\n"
        "thermo 1000\nrun 10000\n"
    )
    proc = subprocess.run(["lmp", "-in", "in.nve", "-log", "none"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-2000:]
    data = np.loadtxt(tmp_path / "energy.txt", comments="#")
    steps, etot, temp = data[:, 0], data[:, 1], data[:, 2]
    n = len(atoms)
    assert steps[-1] == 10000
    assert temp.mean() > 100  # the atoms really move
    assert (etot.max() - etot.min()) / n < 1e-3
    drift_eV_atom_ps = np.polyfit(steps * 1e-3, etot, 1)[0] / n
    assert abs(drift_eV_atom_ps) < 1e-4
