"""``ionmd study`` definitions: the schema, its errors, and the sweep it writes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ionmd.errors import InputError
from ionmd.study.cell_stage import CellInfo
from ionmd.study.config import load_study_config
from ionmd.study.md_stage import sweep_toml
from ionmd.study.report_stage import collect_flags

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CIF = """data_x
_cell_length_a 3.6
_cell_length_b 3.6
_cell_length_c 3.6
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Cu1 Cu 0 0 0
"""

GOOD = """
name = "cu_vac"
[structure]
file = "cu.cif"
supercell = [3, 3, 3]
[defect]
kind = "vacancy"
species = "Cu"
index = 0
[species]
mobile = ["Cu"]
[model]
pair_style = "eam"
pair_coeff = ["* * Cu_u3.eam"]
label = "eam"
[md]
temperatures_K = [1200, 1400]
seeds = [1, 2]
dt_fs = 2
n_prod = 500
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cu.cif").write_text(CIF)
    (tmp_path / "model.pt").write_bytes(b"")
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_good_config_is_read_with_types_and_defaults(tmp_path):
    cfg = load_study_config(write(tmp_path, GOOD))
    assert cfg.name == "cu_vac"
    assert cfg.structure.file == (tmp_path / "cu.cif").resolve()
    assert cfg.structure.supercell == "3x3x3"
    assert cfg.defect.kind == "vacancy" and cfg.defect.index == 0
    assert cfg.md.temperatures_K == [1200.0, 1400.0] and cfg.md.dt_fs == 2.0
    assert cfg.md.n_equil == 1000  # default
    assert len(cfg.models) == 1 and cfg.models[0].classical and cfg.models[0].label == "eam"
    assert cfg.neb.enabled and cfg.neb.images == 5
    assert "path" not in cfg.identity() and cfg.identity()["name"] == "cu_vac"


@pytest.mark.parametrize("edit, message", [
    (("[md]", "[md]\ntemprature = 3"), "key 'md.temprature': unknown key"),
    (('kind = "vacancy"', 'kind = "antisite"'), "key 'defect.kind': expected one of none, vacancy, interstitial"),
    (('species = "Cu"', 'species = "Xx"'), "key 'defect.species': unknown element 'Xx'"),
    (('mobile = ["Cu"]', 'mobile = []'), "key 'species.mobile'"),
    (("temperatures_K = [1200, 1400]", "temperatures_K = [1200, -5]"), "key 'md.temperatures_K'"),
    (("dt_fs = 2", 'dt_fs = "two"'), "key 'md.dt_fs': expected float"),
    (("n_prod = 500", "n_prod = 0"), "key 'md.n_prod': must be >= 1"),
    (('file = "cu.cif"', 'file = "missing.cif"'), "key 'structure.file': file not found"),
    (("index = 0", 'index = 0\nsite = "4a"'), "give at most one of site, index, frac"),
    (('pair_style = "eam"', 'pair_style = "eam"\npath = "model.pt"'), "key 'model': give exactly one of 'path'"),
    (("[model]", "[models.a]\npath = 'model.pt'\n[model]"), "give exactly one of the tables [model] and [models.NAME]"),
    (("supercell = [3, 3, 3]", "supercell = [3, 3, 3]\nmin_length_A = 10"), "not both"),
    (('label = "eam"', 'label = "eam"\ntitle = ""'), "key 'model.title': expected a non-empty string"),
    (('label = "eam"', 'label = "eam"\neta_us_per_atom_step = -1'), "key 'model.eta_us_per_atom_step'"),
    (('label = "eam"', 'label = "eam"\nprovenance = "nope.json"'), "key 'model.provenance': file not found"),
    (("n_prod = 500", 'n_prod = 500\n[neb]\nreference = "nope.json"'), "key 'neb.reference': file not found"),
    (("n_prod = 500", 'n_prod = 500\n[neb]\nreference_entry = "x"'), "key 'neb.reference_entry': only with neb.reference"),
    (("n_prod = 500", "n_prod = 500\n[neb]\nsupercell = true"), "key 'neb.supercell'"),
    (("n_prod = 500", "n_prod = 500\n[neb]\neta_s = 0"), "key 'neb.eta_s': must be > 0"),
])
def test_bad_config_names_file_and_key(tmp_path, edit, message):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_study_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_charges_must_cover_mobile_species(tmp_path):
    text = GOOD.replace('mobile = ["Cu"]', 'mobile = ["Cu"]\ncharges = { Zn = 2 }')
    with pytest.raises(InputError, match="no charge for mobile species Cu"):
        load_study_config(write(tmp_path, text))


def test_interstitial_takes_no_site_label(tmp_path):
    text = GOOD.replace('kind = "vacancy"', 'kind = "interstitial"').replace("index = 0", 'site = "4b"')
    with pytest.raises(InputError, match="largest void"):
        load_study_config(write(tmp_path, text))


def test_sweep_toml_is_valid_and_complete(tmp_path):
    cfg = load_study_config(write(tmp_path, GOOD))
    cell = CellInfo(cell_data=tmp_path / "c d.data", perfect_data=tmp_path / "p.data", n_atoms=107,
                    counts={"Cu": 107}, types=["Cu"], description="x")
    data = tomllib.loads(sweep_toml(cfg, cell, tmp_path / "sweep"))
    assert data["temperatures_K"] == [1200, 1400] and data["seeds"] == [1, 2]
    assert data["structure"] == str(tmp_path / "c d.data")
    assert data["models"]["eam"] == {"pair_style": "eam", "pair_coeff": ["* * Cu_u3.eam"]}
    assert data["md"]["species"] == ["Cu"] and data["md"]["n_prod"] == 500
    assert data["md"]["dt_fs"] == 2


def test_collect_flags_finds_nested_flags_with_location():
    tree = {"models": {"m": {"diffusion": [{"T_K": 900, "flags": ["not_diffusive"]},
                                           {"T_K": 1000, "flags": []}],
                             "arrhenius": {"flags": [{"flag": "from_flagged_points", "detail": "1 of 2"}]}}}}
    flags = collect_flags(tree, "results")
    assert {"where": "results.models.m.diffusion[900]", "flag": "not_diffusive"} in flags
    assert {"where": "results.models.m.arrhenius", "flag": "from_flagged_points", "detail": "1 of 2"} in flags
    assert len(flags) == 2


def test_several_models_and_the_potentials_placeholder(tmp_path):
    from ionmd.study.config import lammps_potentials_dir

    text = GOOD.replace('[model]\npair_style = "eam"\npair_coeff = ["* * Cu_u3.eam"]\nlabel = "eam"',
                        '[models.torch]\npath = "model.pt"\n[models.eam]\npair_style = "eam"\n'
                        'pair_coeff = ["* * {lammps_potentials}/Cu_u3.eam"]')
    assert text != GOOD
    cfg = load_study_config(write(tmp_path, text))
    assert [m.label for m in cfg.models] == ["torch", "eam"]
    assert cfg.models[0].path == (tmp_path / "model.pt").resolve()
    assert cfg.models[1].pair_coeff == [f"* * {lammps_potentials_dir()}/Cu_u3.eam"]
    assert (lammps_potentials_dir() / "Cu_u3.eam").is_file()


def test_neb_cell_reference_and_report_keys(tmp_path):
    (tmp_path / "ref.json").write_text('{"barriers_eV": {"vacancy": 0.7}}')
    text = GOOD.replace('label = "eam"', 'label = "eam"\ntitle = "EAM Cu_u3"\neta_us_per_atom_step = 4')
    text += '[neb]\nsupercell = [4, 4, 4]\nreference = "ref.json"\neta_s = 20\n'
    cfg = load_study_config(write(tmp_path, text))
    m = cfg.models[0]
    assert m.display == "EAM Cu_u3" and m.eta_us_per_atom_step == 4.0 and m.provenance is None
    assert cfg.neb.supercell == "4x4x4" and cfg.neb.reference == (tmp_path / "ref.json").resolve()
    assert cfg.neb.reference_entry is None and cfg.neb.eta_s == 20.0
    assert cfg.identity()["neb"]["supercell"] == "4x4x4"
    # report-only keys do not change what a directory must match to resume
    assert "title" not in cfg.identity()["models"][0] and "reference" not in cfg.identity()["neb"]
    plain_cfg = load_study_config(write(tmp_path, GOOD))
    assert "supercell" not in plain_cfg.identity()["neb"]
    retitled = load_study_config(write(tmp_path, GOOD.replace('label = "eam"', 'label = "eam"\ntitle = "X"')))
    assert retitled.identity() == plain_cfg.identity()
    plain = load_study_config(write(tmp_path, GOOD)).models[0]
    assert plain.display == "eam" and plain.title is None
