"""``ionmd report`` shows NEB barriers beside the Arrhenius Ea of the same model.

A synthetic two-model hopping sweep with known activation energies, plus synthetic NEB
results whose energy profiles have known barriers; the NEB results are matched to the
sweep's models by model-file SHA-256, by file name, or not at all.
"""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from ionmd.analysis.cli import register
from ionmd.analysis.synthetic import HopLattice, hopping_sweep
from ionmd.errors import InputError
from ionmd.examples.lif.structure import unit_cell
from ionmd.filehash import file_sha256
from ionmd.neb.result import NEBResult
from ionmd.neb.sweep_match import find_neb_results, match_results, sweep_models

EA_EV = {"mace": 0.30, "dp": 0.45}  # true Arrhenius activation energies of the two models
NU_PER_PS = 20.0


def neb_result(
    model: str, case: str, barrier_eV: float, converged: bool = True, sha: str = ""
) -> NEBResult:
    """A 5-image result whose profile is E(x) = Eb sin^2(pi x), asymmetric by 10 meV."""
    x = np.linspace(0.0, 1.0, 5)
    e = barrier_eV * np.sin(np.pi * x) ** 2 + 0.010 * x
    return NEBResult(
        label=f"LiF {case} hop",
        model=model,
        cell="3x3x3 conventional, a = 4.03 Å, 217 atoms",
        n_atoms=217,
        n_images=5,
        interpolation="idpp",
        climb=True,
        converged=converged,
        max_force_eV_A=0.008 if converged else 0.2,
        ftol_eV_A=0.01,
        n_steps=[40, 5],
        stopping_criteria=["force tolerance", "force tolerance" if converged else "max iterations"],
        reaction_coordinate=x.tolist(),
        path_length_A=2.3,
        energies_eV=e.tolist(),
        barrier_forward_eV=float(e.max() - e[0]) if converged else None,
        barrier_backward_eV=float(e.max() - e[-1]) if converged else None,
        climbing_image=int(np.argmax(e)),
        case=case,
        model_sha256=sha,
    )


def two_model_sweep(root):
    """Sweep ``root/sw`` with models ``mace`` and ``dp``, each run's in.lammps naming its model file."""
    sweep = root / "sw"
    runs = []
    for k, model in enumerate(("mace", "dp")):
        hopping_sweep(
            sweep,
            (800.0, 1000.0, 1250.0),
            (1,),
            EA_EV[model],
            NU_PER_PS,
            np.random.default_rng(10 + k),
            n_frames=150,
            lattice=HopLattice.of(unit_cell(), "Li", (2, 2, 2)),
            model=model,
        )
        runs += json.loads((sweep / "sweep.json").read_text())["runs"]
    (sweep / "sweep.json").write_text(json.dumps({"name": "sw", "runs": runs}))
    models = root / "models"
    models.mkdir()
    (models / "lif_mace_v3.pt").write_bytes(b"mace weights")
    (sweep / "dp_v2.pth").write_bytes(b"dp weights")
    for run in runs:  # as the driver writes them: the first path after mlip/torch drives the MD
        path = models / "lif_mace_v3.pt" if run["model"] == "mace" else "../../../../dp_v2.pth"
        (sweep / run["dir"] / "in.lammps").write_text(
            f"units metal\npair_style      mlip/torch {path} device cpu\npair_coeff * * Li F\n"
        )
    return sweep, file_sha256(models / "lif_mace_v3.pt")


def test_report_puts_neb_barriers_beside_the_same_models_Ea(tmp_path):
    sweep, mace_sha = two_model_sweep(tmp_path)
    (sweep / "neb").mkdir()
    # found automatically: the MACE file under another name (matched by SHA-256) ...
    neb_result("renamed.pt", "knockoff", 0.161, sha=mace_sha).write_json(sweep / "neb" / "k.json")
    neb_result("renamed.pt", "direct", 0.313, sha=mace_sha).write_json(sweep / "neb" / "d.json")
    # ... a DeePMD result with no hash (matched by file name) that did not converge ...
    neb_result("dp_v2.pth", "direct", 0.25, converged=False).write_json(sweep / "neb" / "dp.json")
    # ... and a JSON that is not an NEB result (skipped with a note)
    (sweep / "neb" / "notes.json").write_text('{"hello": 1}')
    # given with --neb: one for dp (file name), one for a model the sweep does not have
    neb_result("dp_v2.pth", "knockoff", 0.112).write_json(tmp_path / "dp_knockoff.json")
    neb_result("other.pt", "knockoff", 0.5).write_json(tmp_path / "other.json")

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "report",
            str(sweep),
            "--neb",
            str(tmp_path / "dp_knockoff.json"),
            str(tmp_path / "other.json"),
        ]
    )
    assert args.func(args) == 0
    rep = json.loads((sweep / "report.json").read_text())
    md = (sweep / "report.md").read_text()

    # the Arrhenius fits recover the known Ea of each model
    ea = {m: rep["models"][m]["arrhenius"] for m in EA_EV}
    for m, truth in EA_EV.items():
        assert ea[m]["Ea_ci95_eV"][0] < truth < ea[m]["Ea_ci95_eV"][1], (m, ea[m])

    nebs = {(x["sweep_model"], x["case"]): x for x in rep["neb"]}
    assert len(rep["neb"]) == 5
    assert nebs[("mace", "knockoff")]["matched_by"] == "model file SHA-256"
    assert nebs[("dp", "knockoff")]["matched_by"] == "model file name"
    assert nebs[("dp", "direct")]["converged"] is False
    assert nebs[("dp", "direct")]["barrier_forward_eV"] is None
    assert nebs[(None, "knockoff")]["neb_model"] == "other.pt"
    # sin^2 profile plus a 10 meV tilt: forward barrier Eb (+ the tilt at the top image), backward 10 meV less
    k = nebs[("mace", "knockoff")]
    assert k["barrier_forward_eV"] == pytest.approx(0.161 + 0.005, abs=1e-9)
    assert k["barrier_forward_eV"] - k["barrier_backward_eV"] == pytest.approx(0.010, abs=1e-9)

    # the Ea table has an NEB column holding this model's barriers, with the cell in atoms
    ea_table = md.split("## Activation energies", 1)[1].split("\n## ", 1)[0]
    assert "| NEB barriers |" in ea_table
    rows = {
        r.split("|")[1].strip(): r
        for r in ea_table.splitlines()
        if r.startswith(("| mace |", "| dp |"))
    }
    mace_row = rows["mace"]
    assert f"| {ea['mace']['Ea_eV']:.3f} |" in mace_row
    assert "0.166 eV knockoff (217 atoms, converged)" in mace_row
    assert "0.318 eV direct (217 atoms, converged)" in mace_row
    assert "direct (217 atoms, NOT converged)" in rows["dp"] and "0.117 eV knockoff" in rows["dp"]

    # the NEB section: one row per result with the model's Arrhenius Ea, barrier, cell and convergence
    sec = md.split("## NEB barriers", 1)[1].split("\n## ", 1)[0]
    table = [r for r in sec.splitlines() if r.startswith("| ") and not r.startswith("| model")]
    assert len(table) == 5
    by = {(c[1].strip(), c[3].strip()): c for c in (r.split("|") for r in table)}
    c = by[("mace", "direct")]
    assert float(c[2]) == pytest.approx(ea["mace"]["Ea_eV"], abs=5e-4)
    assert float(c[4]) == pytest.approx(0.318, abs=5e-4) and c[9].strip() == "yes"
    assert c[7].strip() == "217" and "3x3x3" in c[6]
    assert by[("dp", "direct")][9].strip().startswith("no (max force 0.2")
    assert by[("(no sweep model)", "knockoff")][2].strip() == "n/a"
    # notes: the unmatched result and the skipped non-NEB JSON
    assert "other.pt) matches no model of this sweep" in md
    assert re.search(r"NEB: skipped .*notes\.json: .* is not an ionmd NEB result", md)
    assert "0.166 eV knockoff (217 atoms, converged)" in (sweep / "report.html").read_text()


def test_neb_matching_rules_and_bad_files(tmp_path):
    sweep, mace_sha = two_model_sweep(tmp_path)
    models = sweep_models(sweep)
    assert models["mace"].sha256 == {mace_sha} and models["mace"].file_names == {"lif_mace_v3.pt"}
    assert models["dp"].file_names == {"dp_v2.pth"} and len(models["dp"].sha256) == 1
    found = [
        (tmp_path / "a", neb_result("lif_mace_v3.pt", "direct", 0.3)),  # by file name
        (tmp_path / "b", neb_result("dp.pt", "direct", 0.3)),  # by the stem = model name
        (tmp_path / "c", neb_result("x.pt", "direct", 0.3, sha="0" * 64)),  # nothing
    ]
    got = [(m.model, m.matched_by) for m in match_results(found, models)]
    assert got == [("mace", "model file name"), ("dp", "model name"), (None, "")]
    with pytest.raises(InputError, match="missing.json does not exist"):
        find_neb_results(sweep, [tmp_path / "missing.json"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        find_neb_results(sweep, [tmp_path / "bad.json"])
