"""The ``fit`` stage of ``ionmd study``: sample, label, fit MACE and export, resumable.

A tiny fit on fcc Cu (2x2x2, one vacancy) with ASE's EMT as the labeller, so the labels
have an independent reference. The exported TorchScript model is checked against
mace's own calculator of the fitted checkpoint on a held-out frame, through LAMMPS
(``pair_style mlip/torch``), i.e. as the MD stage uses it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import read
from lammps_runner import lower_triangular

from ionmd.errors import InputError
from ionmd.study import stages
from ionmd.study.config import load_study_config
from ionmd.study.fit_stage import (
    FORCE_RMSE_FLAG_SHARE,
    ENERGY_RMSE_FLAG_meV_atom,
    FitSpec,
    fit_study_model,
    read_study_fit,
)

pytest.importorskip("mace")
pytestmark = pytest.mark.skipif(shutil.which("mace_run_train") is None,
                                reason="mace_run_train not on PATH")

ROOT = Path(__file__).resolve().parents[1]
CU_CIF = ROOT / "inputs" / "structures" / "cu_fcc.cif"

FIT_TABLE = """
labeller = "emt"
size = "tiny"
epochs = 3
stage_two = false
batch_size = 4
mace = { hidden_irreps = "8x0e", max_ell = 1, r_max = 3.6 }
sampling = { n_rattle = 6, temperatures_K = [700], md_frames_per_T = 3, md_stride = 5, md_equil = 5, hop_images = 2, max_hops = 3, n_short = 4 }
"""

STUDY = f"""
name = "cu_fit_tiny"
[structure]
file = "{CU_CIF}"
supercell = "2x2x2"
[defect]
kind = "vacancy"
species = "Cu"
site = "4a"
[species]
mobile = ["Cu"]
[model]
label = "mace"
[model.fit]
{FIT_TABLE}
[md]
temperatures_K = [1200]
n_prod = 100
"""


@pytest.fixture(scope="module")
def study_cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "study.toml"
    path.write_text(STUDY)
    return load_study_config(path)


@pytest.fixture(scope="module")
def fitted(study_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "mace"
    spec = study_cfg.models[0].fit
    model = fit_study_model(spec, stages.fit_structure(study_cfg), out)
    return out, model


def test_fit_writes_frames_labels_model_and_rmse(fitted):
    out, model = fitted
    assert model == out / "model.pt" and model.is_file()
    sampled = json.loads((out / "frames.json").read_text())
    # 6 rattles x 2 cells + 3 MD frames x 2 cells + 2 images x 3 hops + 4 short contacts
    assert sampled["counts"] == {"rattle": 12, "md": 6, "hop": 6, "short_contact": 4}
    assert sampled["cells"] == ["perfect", "vacancy Cu@4a"]
    labelled = read(out / "labelled.extxyz", index=":")
    assert len(labelled) == sampled["n_frames"] == 28
    assert {len(a) for a in labelled} == {32, 31}
    # the labels are EMT's own numbers
    for k in (0, 13, 27):
        ref = labelled[k].copy()
        ref.calc = EMT()
        assert labelled[k].get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-8)
        assert np.allclose(labelled[k].get_forces(), ref.get_forces(), atol=1e-8)
    summary = read_study_fit(out)
    assert summary is not None and summary.labeller == "emt" and summary.model == str(model)
    assert summary.n_train + summary.n_valid + summary.n_test == 28 and summary.n_test >= 2
    assert summary.export_max_force_error_eV_A < 1e-9
    # the recorded held-out RMSE is that of the checkpoint on the test split
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=summary.checkpoint, device="cpu", default_dtype="float64")
    test = read(out / "mace" / "test.xyz", index=":")
    de, df = [], []
    for atoms in test:
        a = atoms.copy()
        a.calc = calc
        de.append((a.get_potential_energy() - atoms.info["REF_energy"]) / len(a))
        df.append(a.get_forces() - atoms.arrays["REF_forces"])
    assert summary.test_energy_rmse_meV_atom == pytest.approx(1000 * np.sqrt(np.mean(np.square(de))),
                                                              rel=1e-6)
    assert summary.test_force_rmse_meV_A == pytest.approx(
        1000 * np.sqrt(np.mean(np.square(np.concatenate(df)))), rel=1e-6)
    # the flags follow the numbers; three epochs cannot fit EMT energies to 20 meV/atom
    names = {f["flag"] for f in summary.flags}
    assert ("poor_fit_forces" in names) == (summary.test_force_rmse_meV_A
                                            > FORCE_RMSE_FLAG_SHARE * summary.test_force_rms_meV_A)
    assert summary.test_force_rms_meV_A == pytest.approx(
        1000 * np.sqrt(np.mean(np.square(np.concatenate([a.arrays["REF_forces"] for a in test])))))
    assert summary.test_energy_rmse_meV_atom > ENERGY_RMSE_FLAG_meV_atom
    assert {"poor_fit_energy", "few_test_frames"} <= names


def test_exported_model_matches_checkpoint_on_held_out_frame(fitted):
    """Energy and forces of model.pt through LAMMPS vs mace's calculator, on a test frame."""
    from ionmd.plugin import plugin_path

    if plugin_path() is None:
        pytest.skip("ionmd plugin not built")
    pytest.importorskip("mpi4py")
    from mace.calculators import MACECalculator

    from ionmd.neb.potential import Potential
    from ionmd.neb.relax import evaluate

    out, model = fitted
    summary = read_study_fit(out)
    test = read(out / "mace" / "test.xyz", index=":")
    frame = max(test, key=lambda a: np.abs(a.arrays["REF_forces"]).max())  # the hardest one
    frame.info.clear()
    frame.arrays.pop("REF_forces")
    frame = lower_triangular(frame)  # strained cells: rotate into LAMMPS's orientation
    energy_eV, forces_eV_A = evaluate(frame, Potential.from_model(model, ["Cu"]))
    ref = frame.copy()
    ref.calc = MACECalculator(model_paths=summary.checkpoint, device="cpu", default_dtype="float64")
    f_ref = ref.get_forces()
    assert np.abs(f_ref).max() > 1e-3  # a frame with forces to compare
    assert energy_eV == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    assert np.allclose(forces_eV_A, f_ref, atol=1e-6)


def test_rerun_reuses_every_step(fitted, monkeypatch, tmp_path, study_cfg):
    out, model = fitted
    stamp = model.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("a finished step was redone")

    import ionmd.models.export as export
    import ionmd.models.fit as fit
    import ionmd.models.label as label
    import ionmd.models.sampling as sampling

    for mod, name in ((sampling, "sample_structure"), (label, "label_frames"), (fit, "fit_mace"),
                      (export, "export_model")):
        monkeypatch.setattr(mod, name, refuse)
    spec = study_cfg.models[0].fit
    assert fit_study_model(spec, stages.fit_structure(study_cfg), out) == model
    assert model.stat().st_mtime_ns == stamp
    # an interrupted stage (fitted, not yet exported) only exports
    part = tmp_path / "part"
    shutil.copytree(out, part)
    (part / "model.pt").unlink()
    (part / "fit.json").unlink()
    monkeypatch.undo()
    for mod, name in ((sampling, "sample_structure"), (label, "label_frames"), (fit, "fit_mace")):
        monkeypatch.setattr(mod, name, refuse)
    # the copied fit.json of mace/ names the original checkpoint: exporting it again gives
    # the same model
    again = fit_study_model(spec, stages.fit_structure(study_cfg), part)
    assert again == part / "model.pt" and again.is_file()
    assert read_study_fit(part).test_force_rmse_meV_A == read_study_fit(out).test_force_rmse_meV_A


def test_fit_dir_with_other_settings_is_refused(fitted, study_cfg):
    out, _ = fitted
    spec = FitSpec.from_table("x.toml", {"labeller": "emt", "size": "tiny", "epochs": 4},
                              "model.fit")
    with pytest.raises(InputError, match=r"fit_spec.json: this fit was made with other settings "
                                         r"\(differs in: spec\.") as err:
        fit_study_model(spec, stages.fit_structure(study_cfg), out)
    assert "spec.epochs" in str(err.value) and "structure" not in str(err.value).split("differs in:")[1]


def test_study_fit_stage_sets_model_path(fitted, study_cfg, tmp_path):
    """stages.fit_models fills in the model path (reusing a finished fit) for the MD stage."""
    out, model = fitted
    run = tmp_path / "run"
    shutil.copytree(out, run / "fit" / "mace")
    cfg = load_study_config(study_cfg.path)
    assert cfg.models[0].path is None and not cfg.models[0].classical
    stages.fit_models(cfg, run, progress=None)
    assert cfg.models[0].path == run / "fit" / "mace" / "model.pt"
    cell = stages.CellInfo(cell_data=run / "cell.data", perfect_data=run / "perfect.data",
                           n_atoms=31, counts={"Cu": 31}, types=["Cu"], description="test")
    assert f'mace = "{run / "fit" / "mace" / "model.pt"}"' in stages.sweep_toml(cfg, cell, run / "sweep")
    assert stages.fit_records(cfg, run)["mace"]["labeller"] == "emt"
    flags = stages.collect_flags(stages.fit_records(cfg, run), "fit")
    assert any(f["where"] == "fit.mace" and f["flag"] == "poor_fit_energy" for f in flags)


@pytest.mark.parametrize("table, match", [
    ({"labeler": "emt"}, r"key 'model.fit.labeler': unknown key"),
    ({"size": "huge"}, r"key 'model.fit.size': expected one of tiny, small, medium"),
    ({"epochs": 0}, r"key 'model.fit.epochs': must be >= 1"),
    ({"epochs": 2.5}, r"key 'model.fit.epochs': expected int"),
    ({"dtype": "float16"}, r"key 'model.fit.dtype'"),
    ({"cells": "some"}, r"key 'model.fit.cells': expected one of study, all"),
    ({"pair_repulsion": "yes"}, r"key 'model.fit.pair_repulsion': expected bool"),
    ({"mace": {"hidden": "8x0e"}}, r"key 'model.fit.mace.hidden': unknown MACE setting"),
    ({"mace": "8x0e"}, r"key 'model.fit.mace': expected a table"),
    ({"sampling": {"n_rattel": 3}}, r"key 'model.fit.sampling.n_rattel': unknown sampling setting"),
    ({"sampling": {"n_rattle": -1}}, r"key 'model.fit.sampling': sampling: n_rattle must be"),
    ({"sampling": {"rattle_A": [0.1]}}, r"key 'model.fit.sampling.rattle_A': expected a list of 2 numbers"),
    ({"sampling": {"temperatures_K": [300, -5]}}, r"key 'model.fit.sampling': .*positive"),
    ({"config_type_weights": {"short_contact": -1}},
     r"key 'model.fit.config_type_weights.short_contact': expected a weight >= 0"),
])
def test_fit_table_errors_name_file_and_key(table, match):
    with pytest.raises(InputError, match=r"^study.toml: " + match):
        FitSpec.from_table("study.toml", table, "model.fit")


def test_fit_spec_defaults_and_overrides():
    spec = FitSpec.from_table("s.toml", {"mace": {"max_ell": 1, "radial_MLP": [16, 16]},
                                         "sampling": {"temperatures_K": [300, 900]}}, "model.fit")
    assert spec.labeller == "chgnet" and spec.pair_repulsion and spec.size == "small"
    assert spec.mace_args() == ["--max_ell", "1", "--radial_MLP", "[16, 16]"]
    assert spec.plan().temperatures_K == (300.0, 900.0)


@pytest.mark.parametrize("model, match", [
    ('path = "x.pt"\n[model.fit]\nlabeller = "emt"', r"key 'model': give exactly one of 'path'"),
    ('[model.fit]\nsize = "big"', r"key 'model.fit.size'"),
    ('fit = 3', r"key 'model.fit': expected a table"),
    ('pair_coeff = ["* *"]\n[model.fit]\nlabeller = "emt"', r"key 'model.pair_coeff': only with"),
])
def test_study_config_model_fit_errors(tmp_path, model, match):
    text = STUDY.split("[model]")[0] + "[model]\n" + model + "\n[md]\ntemperatures_K = [1200]\n"
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        load_study_config(path)


def test_several_models_one_fitted(tmp_path):
    text = STUDY.split("[model]")[0] + (
        '[models.eam]\npair_style = "eam"\npair_coeff = ["* * Cu_u3.eam"]\n'
        '[models.fitted.fit]\nlabeller = "emt"\nsize = "tiny"\n[md]\ntemperatures_K = [1200]\n')
    path = tmp_path / "study.toml"
    path.write_text(text)
    cfg = load_study_config(path)
    assert [(m.label, m.classical, m.fit is not None) for m in cfg.models] == \
        [("eam", True, False), ("fitted", False, True)]
    assert stages.stage_priors_s(cfg, 1)["fit"] == stages.PRIOR_FIT_S
