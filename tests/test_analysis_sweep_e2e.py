"""End to end: ``ionmd sweep`` (driver, classical LJ model of LiF with a Li interstitial) -> ``ionmd report``.

Checks that the analysis reads the driver's real sweep directory (contract 2) and
dumps (contract 3: only Li dumped, so the framework drift comes from the data file).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ionmd.analysis.report import write_report
from ionmd.analysis.sites import find_sites
from ionmd.lammpsio.datafile import read_data_file

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None or shutil.which("lmp") is None,
                                reason="needs mpirun and lmp")


def test_driver_sweep_to_report(tmp_path):
    driver = pytest.importorskip("ionmd.driver.structure")
    driver.make_structure(tmp_path / "lif.data", supercell=2, add=["Li@interstitial"])
    (tmp_path / "s.toml").write_text("""name = "s"
temperatures_K = [900, 1200]
seeds = [1]
structure = "lif.data"

[models]
lj = { pair_style = "lj/cut 6.0", pair_coeff = ["1 1 0.05 2.54", "2 2 0.05 2.54", "1 2 0.5 1.79"] }

[md]
dt_fs = 1.0
n_equil = 100
n_prod = 2000
dump_every = 20
restart_every = 1000
thermo_every = 500
species = ["Li"]
thermostat = "csvr"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_"))}
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(["mpirun", "-np", "2", sys.executable, "-m", "ionmd.driver", "sweep", "s.toml",
                           "--ranks-per-run", "1"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"driver sweep did not run here: {proc.stderr[-500:]}")
    sweep = tmp_path / "s"
    runs = json.loads((sweep / "sweep.json").read_text())["runs"]
    assert all(r["status"] == "done" for r in runs)
    ref = read_data_file(sweep / runs[0]["data_file"])
    sites = find_sites(ref, ["Li"])
    assert sites.n_lattice == 32 and sites.n_interstitial == 64  # 33 Li: 32 lattice + 1 interstitial
    md, html = write_report(sweep, charges={"Li": 1.0, "F": -1.0})
    rep = json.loads((sweep / "report.json").read_text())
    diff = rep["models"]["lj"]["diffusion"]
    assert [d["T_K"] for d in diff] == [900.0, 1200.0]
    for d in diff:
        assert d["n_ions"] == 33 and d["n_frames"] == 101
        # 2 ps is too short to be diffusive at these temperatures: only the plumbing is checked
        assert abs(d["D_cm2_s"]) < 1e-3 and d["D_err_cm2_s"] > 0 and d["sigma_mS_cm"] is not None
        assert d["kurtosis_A4"] >= 0 and len(d["sources"]) == 1
    assert set(rep["mechanisms"]["lj"]["by_T"]) == {"900.0", "1200.0"}
    assert "## Hop mechanisms" in md.read_text() and html.stat().st_size > 1000
