"""Tests of ``ionmd demo``: the bundled LiF study run through the generic ``ionmd study``.

The end-to-end part runs ``ionmd demo --tiny`` exactly as a user runs the demo (a
subprocess, the sweep over ``mpirun -np 2``), twice, to check resuming:
inputs/studies/lif_interstitial_tiny.toml, 2 temperatures x 2 models x 1 seed of 110 MD
steps of the 65-atom cell. Its numbers mean nothing; the test checks that the report is
complete, that its summary table parses and agrees with study.json and with the files
it summarises, and that a rerun resumes. The other tests check the bundled quick and
full studies (cells, budget), the refusal of another study's directory, and the
generic report features the demo needs (reference barriers, NEB cell, mechanism
shares, cost) on synthetic input.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ionmd.demo import DEMO_STUDIES, demo_study_file
from ionmd.errors import InputError
from ionmd.study.config import load_study_config
from ionmd.study.cost import loop_times, model_cost
from ionmd.study.md_stage import stage_priors_s
from ionmd.study.neb_stage import ReferenceBarriers, classes_in_cell, load_reference_barriers
from ionmd.study.pipeline import check_or_record_config
from ionmd.study.report_stage import hop_barrier_table, mechanism_shares, summary_table

REPO = Path(__file__).resolve().parents[1]
CHGNET_REFERENCE = REPO / "inputs" / "neb" / "chgnet_reference.json"
SUMMARY_HEAD = ("model", "training set", "Ea from D ± 95% (eV)",
                "Ea from defect jump rate ± 95% (eV)", "D(300 K) (cm²/s) [95% CI]",
                "share of defect moves", "µs/atom/step")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_"))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ionmd", "demo", "--tiny", "--out", str(out),
                           "--np", "2", *extra], capture_output=True, text=True, env=_env(),
                          timeout=600)


def _plugin_ready() -> bool:
    from ionmd.plugin import plugin_path

    return plugin_path() is not None and (REPO / "inputs/models/lif_mace.pt").is_file()


def _table(md: str, title: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first Markdown table after the heading ``title``."""
    part = md.split(f"## {title}\n", 1)[1]
    lines = [ln for ln in part.split("\n## ", 1)[0].splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return cells[0], cells[2:]


def _ea(cell: str) -> tuple[float, float] | None:
    m = re.fullmatch(r"(-?\d+\.\d+) ± (\d+\.\d+)( \(flagged: [^)]+\))?", cell)
    return (float(m[1]), float(m[2])) if m else None


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    if not _plugin_ready():
        pytest.skip("the plugin is not built or the bundled models are missing")
    out = tmp_path_factory.mktemp("demo") / "out"
    first = _demo(out)
    assert first.returncode == 0, first.stderr[-3000:]
    statuses = {p: json.loads(p.read_text()) for p in (out / "sweep").rglob("status.json")}
    second = _demo(out)
    return {"out": out, "first": first, "second": second, "statuses": statuses}


def test_tiny_demo_runs_the_bundled_study_and_writes_its_reports(tiny_demo):
    out, proc = tiny_demo["out"], tiny_demo["first"]
    for name in ("report.md", "report.html", "study.json", "study_config.json", "sweep.toml"):
        assert (out / name).is_file(), name
    record = json.loads((out / "study_config.json").read_text())
    assert record["name"] == "lif_interstitial_tiny"  # the bundled study, not a private plan
    study = json.loads((out / "study.json").read_text())
    assert set(study) >= {"name", "units", "config", "cell", "md", "summary", "cost", "results",
                          "neb", "flags"}
    assert study["cell"]["n_atoms"] == 65 and study["cell"]["counts"] == {"Li": 33, "F": 32}
    assert study["md"]["done"] == study["md"]["runs"] == 4
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and not re.search(r'src="(?!data:)[^"]+\.png"', html)
    assert "[demo " in proc.stderr and "left" in proc.stderr  # progress with ETA on stderr
    assert "expected about" in proc.stderr and "rough prior" not in proc.stderr  # eta keys given
    assert "| model | training set |" in proc.stdout  # the summary table on stdout
    assert study["flags"]  # 110 steps: nothing here is to be quoted, and it says so


def test_tiny_demo_summary_table_agrees_with_study_json_and_the_logs(tiny_demo):
    out = tiny_demo["out"]
    study = json.loads((out / "study.json").read_text())
    summary = study["summary"]
    head, rows = _table((out / "report.md").read_text(), "Summary")
    assert tuple(c for c in head if not c.startswith("NEB ")) == SUMMARY_HEAD
    by_label = {r[0]: r for r in rows}
    assert set(by_label) == {"MACE (lif_mace.pt)", "DeePMD se_e2_a (lif_deepmd.pth)"}
    facts = json.loads((REPO / "inputs/models/models.json").read_text())
    for label, m in summary["models"].items():
        row = dict(zip(head, by_label[f"{m['title']} ({Path(m['file']).name})"], strict=True))
        entry = next(e for e in facts.values() if e["file"] == Path(m["file"]).name)
        assert row["training set"].startswith(f"{entry['n_train']} (+{entry['n_valid']} valid")
        fit = study["results"]["models"][label]["arrhenius"]
        ea, half = _ea(row["Ea from D ± 95% (eV)"])
        assert ea == pytest.approx(fit["Ea_eV"], abs=5e-4)
        assert half == pytest.approx((fit["Ea_ci95_eV"][1] - fit["Ea_ci95_eV"][0]) / 2, abs=5e-4)
        # the cost column is model_cost over this model's run directories
        runs = [p.parent for p in (out / "sweep").rglob("status.json")
                if json.loads(p.read_text())["model"] == label]
        cost = model_cost(runs)
        assert cost.n_runs == 2 and cost.atoms == [65]
        assert float(row["µs/atom/step"]) == pytest.approx(cost.us_per_atom_step, abs=0.51)
        assert m["us_per_atom_step"] == pytest.approx(cost.us_per_atom_step)
        # mechanism shares: the interstitial's moves, summed over the temperatures
        by_T = study["results"]["mechanisms"][label]["by_T"]
        n = sum(r["counts"]["interstitialcy"] + r["counts"]["direct_interstitial"] for r in by_T.values())
        assert m["mechanism_shares"]["interstitial"]["n"] == n
        assert row["share of defect moves"].startswith("interstitial:")


def test_tiny_demo_resumes_without_rerunning(tiny_demo):
    second = tiny_demo["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "(resuming)" in second.stderr and "4 already done" in second.stderr
    for path, before in tiny_demo["statuses"].items():
        after = json.loads(path.read_text())
        assert after["status"] == before["status"] == "done"
        assert after["attempts"] == before["attempts"] == 1
        assert after["finished_at"] == before["finished_at"]


def test_directory_of_another_study_is_refused(tmp_path):
    tiny, quick = (load_study_config(demo_study_file(m)) for m in ("tiny", "quick"))
    assert check_or_record_config(tiny, tmp_path, resume=True) is False
    assert check_or_record_config(tiny, tmp_path, resume=True) is True
    with pytest.raises(InputError, match=r"study_config\.json.*(md|name|neb)"):
        check_or_record_config(quick, tmp_path, resume=True)


def test_cli_refuses_full_with_tiny(tmp_path):
    proc = _demo(tmp_path / "x", "--full")
    assert proc.returncode == 2 and "--full and --tiny" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_bundled_studies_quick_and_full_and_the_15_minute_budget():
    quick, full = (load_study_config(demo_study_file(m)) for m in ("quick", "full"))
    assert set(DEMO_STUDIES) == {"quick", "full", "tiny"}
    for cfg in (quick, full):
        assert [m.label for m in cfg.models] == ["mace", "deepmd"]
        assert cfg.defect.kind == "interstitial" and cfg.defect.species == "Li"
        assert max(cfg.md.temperatures_K) < 1120  # LiF melts at 1118 K
        assert cfg.neb.reference == CHGNET_REFERENCE.resolve()
        assert all(m.eta_us_per_atom_step for m in cfg.models)
    # quick: 65-atom MD (8 x 2^3 + 1), NEB in the 217-atom 3x3x3 cell; 4 T x 2 seeds x 8 ps
    assert quick.structure.supercell == "2x2x2" and quick.neb.supercell == "3x3x3"
    assert quick.md.temperatures_K == [700.0, 800.0, 900.0, 1000.0] and quick.md.seeds == [1, 2]
    assert (quick.md.dt_fs, quick.md.n_equil, quick.md.n_prod) == (2.0, 250, 4000)
    assert (quick.neb.images, quick.neb.ftol_eV_A) == (3, 0.02)
    # full: 217-atom MD, more seeds, longer runs, more images, tighter tolerance
    assert full.structure.supercell == "3x3x3" and full.neb.supercell in (None, "3x3x3")
    assert len(full.md.seeds) == 3 and full.md.n_prod == 2 * quick.md.n_prod
    assert full.neb.images == 5 and full.neb.ftol_eV_A < quick.neb.ftol_eV_A
    # the ETA of the quick demo on 2 cores, with the cell's 65 atoms, stays within 15 min
    priors = stage_priors_s(quick, 2, n_atoms=65)
    md = 8 * (2 * 6.0 + 1e-6 * (190 + 300) * 65 * 4250) / 2
    assert priors["md"] == pytest.approx(md)
    assert sum(priors.values()) <= 15 * 60
    assert sum(stage_priors_s(full, 2, n_atoms=217).values()) > 2 * sum(priors.values())


def test_resumed_stage_prior_counts_only_the_work_left():
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


# --------------------------------------------------------------------------- generic features

def test_reference_barriers_flat_and_with_sets(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"reference": "DFT", "barriers_eV": {
        "knock-off": 0.2, "Li(2)-Li(2) in-plane": {"barrier_eV": 0.05, "cell": "3x3x3"},
        "direct": {"barrier_eV": None}}}))
    ref = load_reference_barriers(flat)
    assert ref.match("knockoff")["barrier_eV"] == 0.2  # case, '-' and spaces ignored
    assert ref.match("nothing", "li(2)-li(2) IN_PLANE")["cell"] == "3x3x3"
    assert ref.match("vacancy") is None and ref.match("direct")["barrier_eV"] is None
    sets = load_reference_barriers(CHGNET_REFERENCE, "a=4.03 A, fmax=0.02 eV/A")
    raw = json.loads(CHGNET_REFERENCE.read_text())["barriers_eV"]["a=4.03 A, fmax=0.02 eV/A"]
    assert sets.match("knockoff")["barrier_eV"] == raw["knockoff"]["barrier_eV"]
    assert sets.match("direct")["barrier_eV"] == raw["direct"]["barrier_eV"]
    with pytest.raises(InputError, match="reference_entry.*sets"):
        load_reference_barriers(CHGNET_REFERENCE)
    with pytest.raises(InputError, match="reference_entry 'x' names no set"):
        load_reference_barriers(CHGNET_REFERENCE, "x")
    with pytest.raises(InputError, match="one set"):
        load_reference_barriers(flat, "x")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"barriers_eV": {"direct": "high"}}))
    with pytest.raises(InputError, match=r"bad\.json: barriers_eV\.direct"):
        load_reference_barriers(bad)


def test_hop_classes_move_between_supercells_of_one_structure():
    """A site's fractional position in a 2x2x2 cell lands on the same Cartesian point in 3x3x3."""
    a = 4.03
    small, big = np.eye(3) * 2 * a, np.eye(3) * 3 * a
    c = {"label": "L-I", "start_frac": [0.5, 0.25, 0.25], "end_frac": [0.375, 0.375, 0.125]}
    (moved,) = classes_in_cell([c], small, big)
    assert np.allclose(np.array(moved["start_frac"]) @ big, np.array(c["start_frac"]) @ small)
    assert np.allclose(np.array(moved["end_frac"]) @ big, np.array(c["end_frac"]) @ small)
    assert c["start_frac"] == [0.5, 0.25, 0.25] and moved["label"] == "L-I"  # input untouched
    # a triclinic pair: positions are compared in Cartesian, wrapped into the new cell
    tri = np.array([[3.0, 0.0, 0.0], [1.5, 2.6, 0.0], [0.0, 0.0, 5.0]])
    (w,) = classes_in_cell([{"start_frac": [0.9, 0.1, 0.5]}], 2 * tri, 3 * tri)
    f = np.array([0.9, 0.1, 0.5]) * 2 / 3
    assert np.allclose(w["start_frac"], f % 1.0) and all(0 <= x < 1 for x in w["start_frac"])


def test_mechanism_shares_per_defect_kind():
    mech = {"defect_jump_arrhenius": {"interstitial": {}},
            "by_T": {"700.0": {"counts": {"interstitialcy": 9, "direct_interstitial": 1, "vacancy": 0},
                               "n_vacancies": 0, "n_interstitial_ions": 1},
                     "800.0": {"counts": {"interstitialcy": 10, "direct_interstitial": 2, "vacancy": 3},
                               "n_vacancies": 0, "n_interstitial_ions": 1}}}
    shares = mechanism_shares(mech)
    assert list(shares) == ["interstitial"]  # vacancy moves here are not this defect's
    assert shares["interstitial"]["n"] == 22
    assert shares["interstitial"]["interstitialcy"] == {"count": 19, "share": pytest.approx(19 / 22)}
    vac = mechanism_shares({"by_T": {"1": {"counts": {"vacancy": 4}, "n_vacancies": 1,
                                           "n_interstitial_ions": 0}}})
    assert vac == {"vacancy": {"n": 4, "vacancy": {"count": 4, "share": 1.0}}}
    none = mechanism_shares({"by_T": {"1": {"counts": {}, "n_vacancies": 1, "n_interstitial_ions": 0}}})
    assert none["vacancy"]["vacancy"]["share"] is None


def test_hop_table_shows_reference_and_difference(tmp_path):
    li_i = {"label": "Li(1)-i(1) 1.75 Å", "from_kind": "L", "to_kind": "I", "count": 40}
    i_i = {"label": "i(1)-i(1) 2.02 Å", "from_kind": "I", "to_kind": "I", "count": 30}
    cfg = SimpleNamespace(models=[SimpleNamespace(label="mace")])
    analysis = SimpleNamespace(hop_classes={"mace": [li_i, i_i]}, report={})
    ko_label = f"{li_i['label']}: knock-off Li(1) via i(1), 180°"
    files = []
    for k, (label, mech) in enumerate([(ko_label, "knockoff"), (i_i["label"], "direct")]):
        d = tmp_path / "mace" / f"0{k}_x"
        d.mkdir(parents=True)
        (d / "job.json").write_text(json.dumps({"model": "mace", "label": label, "mechanism": mech,
                                                "hop_class": label.split(": ")[0]}))
        files.append(d / "neb.json")
    res = [{"hop": {"label": ko_label}, "barrier_forward_eV": 0.1504, "flags": []},
           {"hop": {"label": i_i["label"]}, "barrier_forward_eV": 0.3290, "flags": []}]
    refs = ReferenceBarriers("CHGNet", {"knockoff": {"barrier_eV": 0.135}, "direct": {"barrier_eV": 0.26}})
    lines = hop_barrier_table(cfg, analysis, files, res, refs)
    head = next(ln for ln in lines if ln.startswith("| model"))
    assert "| reference (eV) | NEB − reference (eV) |" in head
    rows = {ln.split("|")[2].strip(): [c.strip() for c in ln.strip("|").split("|")]
            for ln in lines if ln.startswith("| mace")}
    assert rows["↳ knock-off Li(1) via i(1), 180°"][4:7] == ["0.150", "0.135", "+0.015"]
    assert rows["i(1)-i(1) 2.02 Å"][4:7] == ["0.329", "0.260", "+0.069"]
    assert rows["Li(1)-i(1) 1.75 Å"][4:6] == ["its knock-offs below", "–"]
    assert any("Reference barriers: CHGNet" in ln for ln in lines)


def test_summary_table_rows_from_the_summary_record():
    summary = {"neb_columns": ["knockoff", "direct"], "reference_source": "CHGNet (x.json)",
               "reference": {"knockoff": {"barrier_eV": 0.135}},
               "models": {"mace": {
                   "title": "MACE", "file": "/m/lif_mace.pt", "training": {"n_train": 300, "n_valid": 5,
                                                                          "n_test": 6},
                   "arrhenius_D": {"Ea_eV": 0.063, "Ea_ci95_eV": [-0.137, 0.263],
                                   "D300K_cm2_s": 8.87e-7, "D300K_ci95_cm2_s": [7e-9, 1.1e-4],
                                   "flags": ["from-flagged-points", "extrapolation-far"]},
                   "defect_jump_arrhenius": {"interstitial": {"Ea_eV": 0.142, "Ea_ci95_eV": [-0.003, 0.287]}},
                   "mechanism_shares": {"interstitial": {"n": 57, "interstitialcy": {"count": 53, "share": 53 / 57},
                                                         "direct_interstitial": {"count": 4, "share": 4 / 57}}},
                   "neb": {"knockoff": {"barrier_eV": 0.1501, "flags": []},
                           "direct": {"barrier_eV": None, "flags": ["not_converged"]}},
                   "us_per_atom_step": 142.4}}}
    lines = summary_table(summary)
    head, rows = _table("\n".join(lines), "Summary")
    assert head[5:7] == ["NEB knockoff (eV)", "NEB direct (eV)"]
    mace = dict(zip(head, rows[0], strict=True))
    assert mace["model"] == "MACE (lif_mace.pt)" and mace["training set"].startswith("300 (+5 valid")
    assert _ea(mace["Ea from D ± 95% (eV)"]) == (0.063, 0.2)
    # a flagged number never reads as a result: its flags stand beside it
    assert mace["Ea from D ± 95% (eV)"].endswith("(flagged: from-flagged-points, extrapolation-far)")
    assert mace["D(300 K) (cm²/s) [95% CI]"].endswith("(flagged: from-flagged-points, extrapolation-far)")
    assert mace["Ea from defect jump rate ± 95% (eV)"] == "interstitial: 0.142 ± 0.145"
    assert mace["NEB knockoff (eV)"] == "0.150" and mace["NEB direct (eV)"] == "no barrier (see flags)"
    assert "interstitialcy 0.93 (53 of 57)" in mace["share of defect moves"]
    assert mace["µs/atom/step"] == "142"
    ref = dict(zip(head, rows[1], strict=True))
    assert ref["model"] == "reference" and ref["NEB knockoff (eV)"] == "0.135"
    assert ref["NEB direct (eV)"] == "–" and not math.isnan(float(ref["NEB knockoff (eV)"]))
