"""benchmarks/gpu_check.sh in its CPU mode: the GPU check runs here too, so it is tested.

``--cpu --quick --skip-build`` runs every step of the GPU check with device ``cpu``
on the installed plugin: the model on the "device" against the same model on the
CPU must agree exactly (same binary, same input, one thread), 2 ranks in halo
mode must match 1 rank to 1e-10, and the summary must hold what the README's GPU
section reads from it. A broken step must be recorded, not stop the check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def quick_summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu", "--quick", "--skip-build", "--python",
                           sys.executable, "--out", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    summary = json.loads((out / "summary.json").read_text())
    return proc, summary, out


def test_quick_cpu_mode_runs_every_step(quick_summary):
    proc, summary, out = quick_summary
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert summary["schema"] == "ionmd-gpu-check-1" and summary["ok"] is True
    assert summary["failures"] == []
    for key in ("config", "environment", "setup", "build", "steps", "agreement", "halo", "speed",
                "wall_s", "started_utc"):
        assert key in summary, key
    assert summary["config"]["device"] == "cpu" and summary["config"]["quick"] is True
    assert summary["build"]["status"] == "skipped" and summary["setup"]["status"] == "skipped"
    assert set(summary["steps"]) >= {"environment", "export", "agree_mace", "agree_deepmd",
                                     "halo_2ranks", "speed_torchscript_float64_65"}
    assert all(s["status"] == "ok" for s in summary["steps"].values())
    # the table is printed and the log kept
    assert "agreement with the CPU" in proc.stdout and (out / "gpu_check.log").is_file()


def test_cpu_against_cpu_is_exact(quick_summary):
    _, summary, _ = quick_summary
    for name in ("mace", "deepmd"):
        rows = summary["agreement"][name]["rows"]
        assert rows and rows[0]["atoms"] == 65
        for row in rows:
            assert row["max_abs_dE_eV"] == 0.0, (name, row)
            assert row["max_abs_dF_eV_A"] == 0.0, (name, row)
            assert row["max_abs_d_atom_energy_eV"] == 0.0, (name, row)
            assert row["max_abs_d_pressure_eV_A3"] == 0.0, (name, row)
            assert row["pass"] is True
            assert -400 < row["energy_eV"] / row["atoms"] * 65 < -200  # a real LiF energy (eV)


def test_two_ranks_halo_match_one_rank(quick_summary):
    _, summary, _ = quick_summary
    halo = summary["halo"]
    assert halo["mode_2ranks"] == "halo"
    assert halo["max_abs_dE_eV"] <= 1e-10 and halo["max_abs_dF_eV_A"] <= 1e-10
    assert halo["pass"] is True


def test_speed_rows(quick_summary):
    _, summary, _ = quick_summary
    (row,) = summary["speed"]
    assert (row["format"], row["dtype"], row["atoms"], row["ranks"]) == ("torchscript", "float64", 65, 1)
    # µs/atom/step and ms/step describe the same run
    assert row["us_per_atom_step"] > 0
    assert abs(row["us_per_atom_step"] * row["atoms"] / 1e3 - row["ms_per_step"]) < 1e-9 * row["ms_per_step"]


def test_failures_are_recorded_not_fatal(tmp_path):
    """A step that fails or hangs is recorded with its error; the steps after it still run."""
    import gpu_check

    work = tmp_path / "work"
    work.mkdir()
    cfg = {"device": "cpu", "pt2_given": {}}
    cfg_file = work / "config.json"
    cfg_file.write_text(json.dumps(cfg))
    # agree_pt2 without a float64 package: a recorded failure naming the cause
    (work / "export.json").write_text(json.dumps({"models": {"torchscript_float64": "x.pt"}}))
    rec = gpu_check.spawn_step("agree_pt2", 120, cfg_file, work)
    assert rec["status"] == "failed" and "no float64 .pt2 package" in rec["error"]
    # an unknown step fails inside the child, still with a record
    rec = gpu_check.spawn_step("nonsense", 120, cfg_file, work)
    assert rec["status"] == "failed" and "unknown step" in rec["error"]
    summary = {"config": cfg, "setup": {"status": "skipped"}, "build": {"status": "failed"},
               "steps": {"agree_pt2": {"status": "failed", "error": "x"},
                         "halo_2ranks": {"status": "ok", "pass": False, "mode_2ranks": "fold",
                                         "atoms": 65, "max_abs_dE_eV": 2e-9,
                                         "max_abs_dF_eV_A": 3e-9}}}
    gpu_check.summarise(summary)
    assert summary["ok"] is False
    assert set(summary["failures"]) == {"agree_pt2", "halo_2ranks (outside 1e-10)", "build"}
    table = gpu_check.format_table(summary)
    assert "failures: agree_pt2" in table and "(fold mode)" in table and "FAIL" in table


def test_budget_skips_remaining_steps(tmp_path):
    import gpu_check

    args = type("A", (), {"cpu": True, "device": "cuda", "sizes": None, "quick": True, "pt2": [],
                          "pt2_dtypes": None, "steps": None, "budget_s": 0.0,
                          "pt2_timeout_s": 10})()
    cfg = gpu_check.config_from_args(args)
    summary = gpu_check.run_check(cfg, tmp_path)
    assert summary["steps"] and all(s["status"] == "skipped" for s in summary["steps"].values())
    assert summary["ok"] is False and json.loads((tmp_path / "summary.json").read_text())["failures"]


def test_plan_orders_pt2_after_the_torchscript_checks():
    import gpu_check

    cfg = {"sizes": [4097, 32768], "speed_dtypes": ["float64", "float32"],
           "pt2_dtypes": ["float64", "float32"], "pt2_timeout_s": 240, "speed_timeout_s": 150}
    names = [n for n, _ in gpu_check.plan_steps(cfg)]
    assert names.index("halo_2ranks") < names.index("pt2_float64") < names.index("agree_pt2")
    assert names.index("speed_torchscript_float32_32768") < names.index("pt2_float64")
    assert names[-1] == "speed_pt2_float32_32768" and len(names) == len(set(names)) == 16
