"""The virial of pair_style mlip/torch against LAMMPS's ``fix numdiff/virial``.

``fix numdiff/virial`` strains the coordinates of owned and ghost atoms, but not the
box. Every graph mode must therefore take its edge vectors from the ghost
coordinates, not rebuild periodic images from the cell: fold mode once did, and
disagreed with the fix (issue 17, D9) while agreeing with box-strain differences.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import lif_interstitial
from lammps_runner import lower_triangular, write_data

SPECIES = ["Li", "F"]


def _virial_and_numdiff(model, words: str, workdir):
    """Pressure (bar, virial part) of the model, and of fix numdiff/virial, at step 0."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(lower_triangular(lif_interstitial()), workdir / "system.data", SPECIES)
    cols = " ".join(f"c_pr[{k}]" for k in range(1, 7)) + " " + " ".join(f"f_nd[{k}]" for k in range(1, 7))
    (workdir / "in.nd").write_text(
        "units metal\natom_style atomic\nread_data system.data\n"
        f"pair_style mlip/torch {model} {words}\npair_coeff * * Li F\n"
        "compute pr all pressure NULL virial\nfix nd all numdiff/virial 1 1e-5\n"
        f"thermo_style custom step {cols}\nthermo_modify format float %.16e\nrun 0\n")
    proc = subprocess.run([shutil.which("lmp") or "lmp", "-in", "in.nd", "-log", "none"], cwd=workdir,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    row = re.search(r"^\s+0(\s+\S+){12}\s*$", proc.stdout, re.M).group(0).split()[1:]
    values = np.array(row, float)
    # compute pressure: xx yy zz xy xz yz; fix numdiff/virial: xx yy zz yz xz xy
    return values[:6], values[6:][[0, 1, 2, 5, 4, 3]], proc.stdout


@pytest.mark.parametrize(("which", "words", "mode"), [
    ("plain", "", "fold"),         # mace's wrapper export: unit shifts from the ghost offsets
    ("halo", "", "fold"),          # halo export: edge vectors from coordinates
    ("plain", "mode shell", "ghost-shell"),
])
def test_virial_matches_numdiff_virial(which, words, mode, mace_float64, mace_halo_float64, tmp_path):
    model = mace_float64[1] if which == "plain" else mace_halo_float64
    pressure, numdiff, log = _virial_and_numdiff(model, words, tmp_path)
    assert f"mlip/torch: {mode}" in log
    scale = np.abs(pressure).max()
    assert scale > 1e3    # a strained, rattled cell: a virial worth checking
    assert np.abs(pressure - numdiff).max() < 1e-5 * scale, (pressure, numdiff)
