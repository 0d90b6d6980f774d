"""Tests of ``ionmd fit`` (ionmd.models.fit) and the DeePMD data writer.

The MACE test always runs (a tiny model, one epoch). The DeePMD training test
runs only when the cached DeePMD env of ``ionmd env deepmd`` exists.
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from ionmd.errors import InputError, IonmdError
from ionmd.models.deepmd_data import write_deepmd_systems
from ionmd.models.dpenv import default_env_path, is_deepmd_env
from ionmd.models.fit import (
    CONTINUE_START_LR,
    deepmd_input,
    derive_sel,
    fit_deepmd,
    fit_mace,
    load_labelled,
    max_neighbours,
    rmse_metrics,
    split_indices,
)
from ionmd.models.label import label_frames


@pytest.fixture(scope="module")
def cu_labelled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cu")
    frames = []
    for i in range(12):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.08, seed=i)
        atoms.set_cell(atoms.cell * (1.0 + 0.01 * (i % 3 - 1)), scale_atoms=True)
        frames.append(atoms)
    write(tmp / "cu.extxyz", frames)
    label_frames(tmp / "cu.extxyz", tmp / "cu_lab.extxyz", "emt")
    return tmp / "cu_lab.extxyz"


def test_split_indices_partition_and_seed():
    tr, va, te = split_indices(50, 0.1, 0.2, seed=3)
    assert (len(tr), len(va), len(te)) == (35, 5, 10)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(50))
    assert np.array_equal(te, split_indices(50, 0.1, 0.2, seed=3)[2])
    assert not np.array_equal(te, split_indices(50, 0.1, 0.2, seed=4)[2])
    with pytest.raises(InputError, match="at least 3"):
        split_indices(2)


def test_rmse_metrics_known_answer():
    # Energies off by +2 eV on 4 atoms and -2 eV on 4 atoms: 0.5 eV/atom RMSE.
    # Force components off by 0.03 eV/Å everywhere: 30 meV/Å.
    ref_F = np.zeros((8, 3))
    e, f = rmse_metrics([1.0, 1.0], [3.0, -1.0], [4, 4], ref_F, ref_F + 0.03)
    assert e == pytest.approx(500.0)
    assert f == pytest.approx(30.0)


def test_fit_mace_tiny_reports_heldout_errors(cu_labelled, tmp_path):
    result = fit_mace(cu_labelled, tmp_path / "fit", size="tiny", epochs=1, seed=1, committee=2)
    assert (result.n_train, result.n_valid, result.n_test) == (10, 1, 1)
    assert result.e0_source == "labeller isolated atoms"
    assert result.e0_eV["Cu"] == pytest.approx(
        json.loads((cu_labelled.parent / "cu_lab.extxyz.e0.json").read_text())["e0_eV"]["Cu"]
    )
    saved = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert saved["test_force_rmse_meV_A"] == pytest.approx(result.test_force_rmse_meV_A)
    # Recompute the held-out force RMSE independently from the trained checkpoint.
    from mace.calculators import MACECalculator

    test = read(tmp_path / "fit" / "test.xyz", ":")
    calc = MACECalculator(
        model_paths=result.members[0].model, device="cpu", default_dtype="float64"
    )
    df, ref_forces = [], []
    for atoms in test:
        ref = atoms.arrays["REF_forces"]
        atoms.calc = calc
        df.append(atoms.get_forces() - ref)
        ref_forces.append(ref)
    assert result.test_force_rmse_meV_A == pytest.approx(
        1000 * np.sqrt(np.mean(np.concatenate(df) ** 2)), rel=1e-6
    )
    assert np.isfinite(result.test_energy_rmse_meV_atom)
    # The committee: two members with different seeds give different models.
    assert [m.seed for m in result.members] == [1, 2]
    assert result.members[1].test_force_rmse_meV_A != result.members[0].test_force_rmse_meV_A
    # ZBL pair repulsion is on by default: two Cu nuclei 0.5 Å apart cost about 120 eV
    # (mace's screened Coulomb of Z = 29 with its envelope), far beyond anything one
    # epoch of training on rattled Cu could learn.
    atoms = test[0].copy()
    atoms.calc = calc
    e_eq = atoms.get_potential_energy()
    vec = atoms.get_distance(0, 1, mic=True, vector=True)
    atoms.positions[1] = atoms.positions[0] + 0.5 * vec / np.linalg.norm(vec)
    assert atoms.get_potential_energy() - e_eq > 50.0


def test_fit_mace_passes_zbl_and_config_type_weights(cu_labelled, tmp_path, monkeypatch):
    """The mace_run_train command line: ZBL on (off with pair_repulsion=False), weights by type."""
    import subprocess as sp

    frames = read(cu_labelled, ":")
    for atoms in frames[:4]:
        atoms.info["config_type"] = "short_contact"
    write(tmp_path / "typed.extxyz", frames)
    (tmp_path / "typed.extxyz.e0.json").write_text(
        (cu_labelled.parent / "cu_lab.extxyz.e0.json").read_text())
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return sp.CompletedProcess(cmd, 1)  # "failed": fit_mace stops after the first call

    monkeypatch.setattr(sp, "run", fake_run)
    for zbl, epochs in ((True, 8), (False, 3)):
        with pytest.raises(IonmdError, match="mace_run_train failed"):
            fit_mace(tmp_path / "typed.extxyz", tmp_path / f"o{zbl}", size="tiny", epochs=epochs,
                     pair_repulsion=zbl, config_type_weights={"short_contact": 0.3})
    assert "--pair_repulsion" in calls[0] and "--pair_repulsion" not in calls[1]
    # Stage two (energy weight 1000) for the last quarter of 8 epochs; none for 3 epochs.
    assert calls[0][calls[0].index("--start_stage_two") + 1] == "6"
    assert "--stage_two" not in calls[1]
    weights = calls[0][calls[0].index("--config_type_weights") + 1]
    assert ast.literal_eval(weights) == {"Default": 1.0, "short_contact": 0.3}  # as mace parses it
    typed = [a.info.get("config_type") for a in read(tmp_path / "oTrue" / "train.xyz", ":")]
    assert typed.count("short_contact") >= 1 and None in typed


def test_fit_errors_name_the_problem(cu_labelled, tmp_path):
    with pytest.raises(InputError, match="missing.extxyz: no such file"):
        fit_mace(tmp_path / "missing.extxyz", tmp_path / "o")
    unlabelled = tmp_path / "raw.extxyz"
    write(unlabelled, [bulk("Cu", "fcc", a=3.6, cubic=True)] * 3)
    with pytest.raises(InputError, match="frame 0 has no energy or forces label"):
        load_labelled(unlabelled)
    with pytest.raises(InputError, match="--size 'huge'"):
        fit_mace(cu_labelled, tmp_path / "o", size="huge")
    with pytest.raises(InputError, match="--foundation .*nofoundation.model: no such file"):
        fit_mace(cu_labelled, tmp_path / "o", foundation=tmp_path / "nofoundation.model")
    with pytest.raises(InputError, match="--dp-env .*: no python there can `import deepmd.pt`"):
        fit_deepmd(cu_labelled, tmp_path / "o", dp_env=tmp_path)


def test_write_deepmd_systems_groups_and_units(tmp_path):
    frames = []
    for i, n in enumerate((1, 1, 2)):
        atoms = bulk("LiF", "rocksalt", a=4.03, cubic=True).repeat((n, 1, 1))
        atoms.rattle(0.02, seed=i)
        stress = np.array([0.01, 0.02, 0.03, 0.004, 0.005, 0.006])  # eV/Å^3, Voigt
        atoms.calc = SinglePointCalculator(
            atoms, energy=-1.5 * len(atoms), forces=np.ones((len(atoms), 3)) * i, stress=stress
        )
        frames.append(atoms)
    systems = write_deepmd_systems(frames, tmp_path / "dp", ["Li", "F"])
    assert len(systems) == 2  # 8-atom and 16-atom cells
    s0 = systems[0] / "set.000"
    assert np.load(s0 / "coord.npy").shape == (2, 24)
    np.testing.assert_allclose(np.load(s0 / "energy.npy"), [-12.0, -12.0])
    virial = np.load(s0 / "virial.npy")[0].reshape(3, 3)
    vol = frames[0].get_volume()
    # virial = -stress * volume, symmetric, with xy in [0, 1].
    assert virial[0, 0] == pytest.approx(-0.01 * vol) and virial[0, 1] == pytest.approx(
        -0.006 * vol
    )
    assert (systems[0] / "type.raw").read_text().split() == ["0", "1"] * 4
    with pytest.raises(InputError, match="frame 0 has element\\(s\\) F not in type_map"):
        write_deepmd_systems(frames, tmp_path / "dp2", ["Li"])


def _ase_max_neighbours(atoms, type_map, rcut):
    """Independent reference: ase's neighbour list, counted per centre and type."""
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, rcut)
    types = np.array([type_map.index(s) for s in atoms.get_chemical_symbols()])
    counts = np.zeros((len(atoms), len(type_map)), dtype=int)
    np.add.at(counts, (i, types[j]), 1)
    return counts.max(axis=0).tolist()


def test_deepmd_sel_covers_neighbours_of_other_chemistries():
    # Rock-salt LiF, a = 4.03 Å, rcut 5 Å: same-type shells at a/sqrt2 (12), a (6) and
    # a*sqrt(3/2) = 4.94 Å (24) give 42; other-type shells a/2 (6), a*sqrt3/2 (8) and
    # a*sqrt5/2 = 4.51 Å (24) give 38. Per neighbour type over all centres: 42 and 42.
    # The 8-atom cubic cell (4.03 Å < rcut) checks periodic images beyond one cell.
    lif = bulk("LiF", "rocksalt", a=4.03, cubic=True)
    assert max_neighbours([lif], ["Li", "F"], 5.0) == [42, 42]
    assert _ase_max_neighbours(lif, ["Li", "F"], 5.0) == [42, 42]
    sel = derive_sel([42, 42], floor=40)
    assert sel == [52, 52] and all(n % 4 == 0 and n >= 42 * 1.15 for n in sel)
    # fcc Cu (a = 3.6 Å): 12 + 6 + 24 within 5 Å (the next shell, 12 at 5.09 Å, is out).
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    assert max_neighbours([cu], ["Cu"], 5.0) == [42]
    # NaCl (a = 5.64 Å), rcut 6 Å, rattled and sheared (a triclinic cell): our count
    # the count agrees with ase's neighbour list, and the derived sel covers it with margin.
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((2, 1, 1))
    nacl.set_cell(
        nacl.cell @ np.array([[1, 0.04, 0], [0, 1, -0.03], [0.02, 0, 0.98]]), scale_atoms=True
    )
    nacl.rattle(0.15, seed=3)
    counts = max_neighbours([bulk("NaCl", "rocksalt", a=5.64, cubic=True), nacl], ["Na", "Cl"], 6.0)
    assert counts == _ase_max_neighbours(nacl, ["Na", "Cl"], 6.0)
    assert all(c >= 18 for c in counts)  # perfect cell: 12 + 6 same-type within 6 Å
    assert all(n >= 1.15 * c for n, c in zip(derive_sel(counts), counts, strict=True))
    # The floor is kept; the input carries one sel per type; a wrong length is refused.
    assert derive_sel([3, 0], floor=40) == [40, 40]
    desc = deepmd_input(["Na", "Cl"], "small", sel=derive_sel(counts))["model"]["descriptor"]
    assert desc["sel"] == derive_sel(counts)
    assert deepmd_input(["Li", "F"], "small")["model"]["descriptor"]["sel"] == [40, 40]
    with pytest.raises(InputError, match="one count per type"):
        deepmd_input(["Li", "F"], "small", sel=[52])


def test_deepmd_continued_input_and_init_model_errors(tmp_path, cu_labelled):
    fresh = deepmd_input(["Li", "F"], "small", steps=30000)
    cont = deepmd_input(["Li", "F"], "small", steps=30000, continued=True)
    assert fresh["learning_rate"]["start_lr"] == 2e-3
    assert cont["learning_rate"]["start_lr"] == CONTINUE_START_LR < 2e-3
    assert cont["learning_rate"]["stop_lr"] == fresh["learning_rate"]["stop_lr"]
    # The prefactors stay where the first run ended; the model and data are unchanged.
    assert (cont["loss"]["start_pref_e"], cont["loss"]["start_pref_f"]) == (
        fresh["loss"]["limit_pref_e"], fresh["loss"]["limit_pref_f"])
    assert cont["model"] == fresh["model"] and cont["training"] == fresh["training"]
    with pytest.raises(InputError, match="--init-model .*nowhere: no such file or directory"):
        fit_deepmd(cu_labelled, tmp_path / "o", init_model=tmp_path / "nowhere")
    (tmp_path / "old" / "member0").mkdir(parents=True)
    with pytest.raises(InputError, match="no checkpoint .*member0/model.ckpt.pt"):
        fit_deepmd(cu_labelled, tmp_path / "o", init_model=tmp_path / "old")
    ckpt = tmp_path / "old" / "member0" / "model.ckpt.pt"
    ckpt.write_bytes(b"")
    with pytest.raises(InputError, match="one checkpoint for a committee of 2"):
        fit_deepmd(cu_labelled, tmp_path / "o", committee=2, init_model=ckpt)


@pytest.mark.skipif(
    not is_deepmd_env(default_env_path()), reason="no DeePMD env (run `ionmd env deepmd`)"
)
def test_fit_deepmd_tiny(tmp_path):
    from ionmd.examples.lif.sampling import SamplingPlan, sample_lif_frames

    plan = SamplingPlan(kinds={"interstitial": 1.0}, frames_per_run=6, stride=50, equil=100)
    frames = sample_lif_frames(12, plan, seed=5, perturb=False)
    for atoms in frames:
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.info["classical_energy"], forces=atoms.arrays["classical_forces"]
        )
    write(tmp_path / "lif.extxyz", frames)
    result = fit_deepmd(tmp_path / "lif.extxyz", tmp_path / "dp", size="tiny", steps=20)
    assert result.family == "deepmd" and result.species == ["Li", "F"]
    assert (tmp_path / "dp" / "member0" / "frozen.pth").stat().st_size > 10_000
    counts = max_neighbours(frames, ["Li", "F"], 5.0)
    recorded = json.loads((tmp_path / "dp" / "fit.json").read_text())["sel"]
    assert recorded["sel"] == derive_sel(counts, floor=40) and recorded["source"].startswith("der")
    used = json.loads((tmp_path / "dp" / "member0" / "input.json").read_text())
    assert used["model"]["descriptor"]["sel"] == recorded["sel"]
    # Force RMSE of an (almost) untrained model is of the order of the force scale, and finite.
    scale = 1000 * np.sqrt(
        np.mean(np.concatenate([a.arrays["classical_forces"] for a in frames]) ** 2)
    )
    assert 0.0 < result.test_force_rmse_meV_A < 5 * scale
    # Training on from that fit: same split, the checkpoint passed to dp, the second cycle.
    cont = fit_deepmd(tmp_path / "lif.extxyz", tmp_path / "dp2", size="tiny", steps=10,
                      init_model=tmp_path / "dp")
    assert cont.init_model == [str((tmp_path / "dp" / "member0" / "model.ckpt.pt").resolve())]
    assert json.loads((tmp_path / "dp2" / "split.json").read_text()) == json.loads(
        (tmp_path / "dp" / "split.json").read_text())
    used = json.loads((tmp_path / "dp2" / "member0" / "input.json").read_text())
    assert used["learning_rate"]["start_lr"] == CONTINUE_START_LR
    assert used["loss"]["start_pref_f"] == used["loss"]["limit_pref_f"] == 1
    log = (tmp_path / "dp2" / "member0" / "train.log").read_text()
    assert f"Resuming from {cont.init_model[0]}" in log  # dp loaded the weights
    # Continuing from trained weights cannot start worse than an untrained model would.
    assert 0.0 < cont.test_force_rmse_meV_A < 5 * scale


def test_emt_reference_is_deterministic():
    """Sanity: the EMT labels used above are reproducible (the fit tests rely on it)."""
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.08, seed=0)
    a.calc = EMT()
    b = a.copy()
    b.calc = EMT()
    assert a.get_potential_energy() == b.get_potential_energy()


def test_cli_fit_and_label_argument_errors(tmp_path):
    import argparse

    from ionmd.models.cli import register

    parser = argparse.ArgumentParser(prog="ionmd")
    register(parser.add_subparsers(dest="command"))
    data = tmp_path / "d.extxyz"
    for argv, message in (
        (
            ["fit", "mace", str(data), "-o", str(tmp_path / "o"), "--committee", "0"],
            "--committee 0",
        ),
        (
            ["fit", "mace", str(data), "-o", str(tmp_path / "o"), "--dp-env", str(tmp_path)],
            "--dp-env applies",
        ),
        (
            ["fit", "deepmd", str(data), "-o", str(tmp_path / "o"), "--foundation", "x.model"],
            "--foundation applies",
        ),
        (
            ["fit", "mace", str(data), "-o", str(tmp_path / "o"), "--init-model", str(tmp_path)],
            "--init-model applies to `ionmd fit deepmd` only",
        ),
        (
            ["label", str(data), "-o", str(tmp_path / "l.extxyz"), "--calculator", "emt"],
            "d.extxyz: no such file",
        ),
    ):
        args = parser.parse_args(argv)
        with pytest.raises(InputError, match=message):
            args.func(args)


def test_fit_mace_fast_preset_command_line(cu_labelled, tmp_path, monkeypatch):
    """``--size fast``: small's recipe with max_ell 1 and 6 radial functions, as mace parses it."""
    import subprocess as sp

    from mace.tools import build_default_arg_parser

    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return sp.CompletedProcess(cmd, 1)

    monkeypatch.setattr(sp, "run", fake_run)
    for size in ("small", "fast"):
        with pytest.raises(IonmdError, match="mace_run_train failed"):
            fit_mace(cu_labelled, tmp_path / size, size=size)
    small, fast = (build_default_arg_parser().parse_args(cmd[1:]) for cmd in calls)
    assert (fast.max_ell, fast.num_radial_basis, fast.num_interactions) == (1, 6, 2)
    assert (small.max_ell, small.num_radial_basis, small.num_interactions) == (2, 8, 2)
    assert fast.hidden_irreps == small.hidden_irreps == "16x0e"
    assert fast.r_max == small.r_max == 4.0
    assert fast.correlation == small.correlation == 2
    assert fast.pair_repulsion and fast.max_num_epochs == 60
    assert fast.start_swa == 45  # stage two (mace dest start_swa) for the last quarter
    differ = {k for k, v in vars(fast).items() if vars(small)[k] != v}
    assert differ == {"max_ell", "num_radial_basis", "work_dir", "train_file", "valid_file",
                      "max_num_epochs", "start_swa"}
