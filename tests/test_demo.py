"""Tests of ``ionmd demo``: the tiny mode end to end (twice, to check resuming), the cost
parser, the budget of the quick mode and the refusal of a directory of another plan.

The end-to-end part runs ``ionmd demo --tiny`` exactly as a user runs the demo (a
subprocess, the sweep over ``mpirun -np 2``): 2 temperatures x 2 models x 1 seed of
110 MD steps of the 65-atom cell, and 4 NEBs of 10 steps. Its numbers mean nothing;
the test checks that the report is complete, parses, is honest about what is
missing, agrees with the files it summarises, and that a rerun resumes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ionmd.errors import InputError
from ionmd.study.cost import loop_times, model_cost
from ionmd.study.plan import (
    CHGNET_REFERENCE,
    PLANS,
    check_or_record_plan,
    interstitial_cell_atoms,
    plan_for,
)

REPO = Path(__file__).resolve().parents[1]
KB_EV_K = 8.617333262e-5
NUMERIC_COLUMNS = ("Ea ± 95% CI (eV)", "Ea from hop rate ± 95% CI (eV)",
                   "D(300 K) (cm²/s) [95% CI]", "NEB knock-off (eV)", "NEB direct (eV)",
                   "knock-off fraction of hops", "µs/atom/step")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_"))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _demo(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ionmd", "demo", "--tiny", "--out", str(out),
                           "--np", "2"], capture_output=True, text=True, env=_env(), timeout=600)


def _plugin_ready() -> bool:
    from ionmd.plugin import plugin_path

    return plugin_path() is not None and (REPO / "inputs/models/lif_mace.pt").is_file()


def _main_table(md: str) -> tuple[list[str], list[list[str]]]:
    section = md.split("## Results", 1)[1]
    lines = [ln for ln in section.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return cells[0], cells[2:]


def _first_number(cell: str) -> float | None:
    """The cell's leading number; None for an honest ``n/a (reason)``."""
    if cell.startswith("n/a"):
        assert re.match(r"n/a \(.+\)", cell), f"n/a without a reason: {cell!r}"
        return None
    value = float(cell.split()[0])
    assert math.isfinite(value), cell
    return value


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """Run the tiny demo, snapshot its state, run it again (resume)."""
    if not _plugin_ready():
        pytest.skip("pair_style mlip/torch plugin or bundled models not available")
    out = tmp_path_factory.mktemp("demo") / "out"
    first = _demo(out)
    assert first.returncode == 0, first.stderr[-3000:]
    statuses = {p: json.loads(p.read_text()) for p in sorted(out.glob("sweep/runs/**/status.json"))}
    nebs = {p: p.stat().st_mtime_ns for p in sorted(out.glob("neb/*/neb.json"))}
    report_first = (out / "report.md").read_text()
    second = _demo(out)
    assert second.returncode == 0, second.stderr[-3000:]
    return {"out": out, "first": first, "second": second, "statuses": statuses, "nebs": nebs,
            "report_first": report_first}


def test_tiny_demo_writes_report_and_plots_that_parse(tiny_demo):
    import matplotlib.image as mpimg

    out = tiny_demo["out"]
    md = (out / "report.md").read_text()
    pngs = re.findall(r"^!\[[^\]]*\]\(([^)]+\.png)\)$", md, flags=re.MULTILINE)
    assert {Path(p).name for p in pngs} == {"arrhenius.png", "msd.png", "neb.png"}
    for p in pngs:
        img = mpimg.imread(out / p)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
        assert np.ptp(img[..., :3]) > 0.5  # not a blank canvas
    html = (out / "report.html").read_text()
    uris = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(uris) == 3 and ".png'" not in html  # self-contained: every image embedded
    assert mpimg.imread(io.BytesIO(base64.b64decode(uris[0])), format="png").ndim == 3
    assert html.count("<table>") == 3 and "CHGNet" in html  # main, per T, invocations
    for text in ("CHGNet 0.3.0 labels", "NOT converged in cell size", "Wide error bars",
                 "TINY MODE"):
        assert text in md, text


def test_tiny_demo_table_rows_are_numbers_or_honest_na(tiny_demo):
    out = tiny_demo["out"]
    header, rows = _main_table((out / "report.md").read_text())
    assert [r[0].split()[0] for r in rows] == ["MACE", "DeePMD", "CHGNet"]
    assert all(len(r) == len(header) for r in rows)
    col = {name: header.index(name) for name in NUMERIC_COLUMNS}
    for row in rows:
        for name in NUMERIC_COLUMNS:
            _first_number(row[col[name]])
    # Training-set sizes are the bundled models' (inputs/models/models.json).
    facts = json.loads((REPO / "inputs/models/models.json").read_text())
    assert rows[0][1].startswith(f"{facts['lif_mace']['n_train']} ")
    assert rows[1][1].startswith(f"{facts['lif_deepmd']['n_train']} ")
    # The reference row is CHGNet's own barrier, and says its cell (3x3x3, 217 atoms).
    ref = json.loads(CHGNET_REFERENCE.read_text())["barriers_eV"]["a=4.03 A, fmax=0.02 eV/A"]
    assert _first_number(rows[2][col["NEB knock-off (eV)"]]) == pytest.approx(
        ref["knockoff"]["barrier_eV"], abs=5e-4)
    assert _first_number(rows[2][col["NEB direct (eV)"]]) == pytest.approx(
        ref["direct"]["barrier_eV"], abs=5e-4)
    assert "217 atoms" in rows[2][header.index("NEB cell")]
    assert "65 atoms" in rows[0][header.index("NEB cell")]  # tiny NEBs use the 2x2x2 cell


def test_tiny_demo_numbers_agree_with_their_sources(tiny_demo):
    out = tiny_demo["out"]
    header, rows = _main_table((out / "report.md").read_text())
    summary = json.loads((out / "demo.json").read_text())
    for row, model in zip(rows[:2], ("mace", "deepmd"), strict=True):
        m = summary["models"][model]
        # µs/atom/step recomputed from the runs' LAMMPS logs: sum(T x P) / sum(steps x atoms).
        core_s = atom_steps = 0.0
        for log in (out / "sweep" / "runs" / model).glob("*/*/log.lammps"):
            for line in log.read_text().splitlines():
                if g := re.match(r"Loop time of (\S+) on (\d+) procs for (\d+) steps with (\d+)",
                                 line):
                    core_s += float(g[1]) * int(g[2])
                    atom_steps += int(g[3]) * int(g[4])
        assert atom_steps == 2 * interstitial_cell_atoms(2) * PLANS["tiny"].steps_per_run
        cost = _first_number(row[header.index("µs/atom/step")])
        assert cost == pytest.approx(1e6 * core_s / atom_steps, rel=0.01)
        # With two temperatures the Arrhenius line passes through both points:
        # Ea = k_B ln(D2 / D1) / (1/T1 - 1/T2).
        d = {p["T_K"]: p["D_cm2_s"] for p in m["diffusion"]}
        (T1, D1), (T2, D2) = sorted(d.items())
        if D1 > 0 and D2 > 0:
            ea = KB_EV_K * math.log(D2 / D1) / (1 / T1 - 1 / T2)
            assert _first_number(row[header.index("Ea ± 95% CI (eV)")]) == pytest.approx(
                ea, abs=1.5e-3)
        # NEB cells: a barrier only if that NEB converged, else "n/a (not converged ...)".
        for case, name in (("knockoff", "NEB knock-off (eV)"), ("direct", "NEB direct (eV)")):
            neb = m["neb"][case]
            value = _first_number(row[header.index(name)])
            if neb.get("converged"):
                assert value == pytest.approx(neb["barrier_forward_eV"], abs=5e-4)
                assert value == pytest.approx(max(neb["energies_eV"]), abs=5e-4)
            else:
                assert value is None


def test_tiny_demo_shows_progress_and_resumes_without_rerunning(tiny_demo):
    first, second = tiny_demo["first"].stderr, tiny_demo["second"].stderr
    for stage in ("stage 1/3 md", "stage 2/3 neb", "stage 3/3 analysis"):
        assert stage in first
    assert re.search(r"\d+/4 runs done, \d+ running, \d+ failed", first)
    assert re.search(r"about \d\d:\d\d:\d\d left", first)
    assert "4 already done" in second and "(resuming)" in second
    for path, before in tiny_demo["statuses"].items():
        after = json.loads(path.read_text())
        assert after["status"] == before["status"] == "done"
        assert after["attempts"] == before["attempts"] == 1
        assert after["finished_at"] == before["finished_at"]
    assert len(tiny_demo["nebs"]) == 4
    for path, mtime in tiny_demo["nebs"].items():
        assert path.stat().st_mtime_ns == mtime
    assert "(resumed: finished runs and NEBs were reused)" in (tiny_demo["out"] / "report.md").read_text()


def test_resumed_stage_prior_counts_only_the_work_left():
    import io

    from ionmd.study.progress import DemoProgress

    progress = DemoProgress({"md": 1000.0, "neb": 100.0}, stream=io.StringIO())
    progress.start("md")
    assert progress.left_s(0.0) == pytest.approx(1100.0, abs=2.0)
    progress.scale_prior(0.48)  # 52 % of the sweep's work was done before the resume
    assert progress.left_s(0.0) == pytest.approx(480.0 + 100.0, abs=2.0)
    assert progress.priors_s["neb"] == 100.0


def test_cost_from_loop_time_lines(tmp_path):
    log = tmp_path / "log.lammps"
    log.write_text("Step Temp\n0 900\nLoop time of 2.5 on 2 procs for 100 steps with 65 atoms\n\n"
                   "Loop time of 0.01 on 2 procs for 0 steps with 65 atoms\n"
                   "Loop time of 7.5 on 1 procs for 300 steps with 217 atoms\n")
    assert [lt.steps for lt in loop_times(log)] == [100, 0, 300]
    cost = model_cost([tmp_path])
    # (2.5 x 2 + 7.5 x 1) core-s / (100 x 65 + 300 x 217) atom-steps
    assert cost.us_per_atom_step == pytest.approx(1e6 * 12.5 / (6500 + 65100))
    assert cost.ranks == [1, 2] and cost.atoms == [65, 217] and cost.n_loops == 2


def test_quick_plan_fits_the_15_minute_budget_on_2_cores():
    quick, full = plan_for("quick"), plan_for("full")
    assert sum(quick.predicted_s(2).values()) < 15 * 60
    assert quick.md_atoms == 65 and full.md_atoms >= 217 and full.neb_atoms >= 217
    assert max(quick.temperatures_K) < 1120 and max(full.temperatures_K) < 1120  # LiF melts
    assert len(full.seeds) > len(quick.seeds) and full.n_prod > quick.n_prod


def test_directory_of_another_plan_is_refused(tmp_path):
    assert check_or_record_plan(plan_for("tiny"), tmp_path) is False
    assert check_or_record_plan(plan_for("tiny"), tmp_path) is True
    with pytest.raises(InputError, match="demo_plan.json.*'tiny' demo"):
        check_or_record_plan(plan_for("quick"), tmp_path)
