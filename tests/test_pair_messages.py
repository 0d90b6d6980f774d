"""pair_style mlip/torch messages that name the problem and its fix, the shell-cost
warning, and ``deviation_append`` (a resumed run keeps its deviation file)."""

from __future__ import annotations

import numpy as np
from conftest import DEEPMD_FIXTURES, lif_interstitial, lif_small
from lammps_runner import lower_triangular, run_lammps

SE_A = DEEPMD_FIXTURES / "se_e2_a_tiny.pth"
SE_A_NOOPS = DEEPMD_FIXTURES / "se_e2_a_tiny_noops.pth"
SPECIES = ["Li", "F"]


def _error(tmp_path, pair_style, **kw) -> str:
    res = run_lammps(lower_triangular(kw.pop("atoms", lif_small())), pair_style, kw.pop("species", SPECIES),
                     tmp_path, check=False, **kw)
    assert "ERROR" in res.log, res.log[-2000:]
    assert "Segmentation" not in res.log and "terminate called" not in res.log
    return res.log


def test_mistyped_keyword_is_named_with_the_valid_ones(tmp_path):
    log = _error(tmp_path, f"pair_style mlip/torch {SE_A} devcie cpu")
    assert "unknown keyword 'devcie'" in log
    assert "device, deviation, deviation_append, mode" in log
    assert "does not exist" not in log


def test_keyword_value_after_keywords_is_not_a_model(tmp_path):
    log = _error(tmp_path, f"pair_style mlip/torch {SE_A} device cpu extra_word")
    assert "unknown keyword 'extra_word'" in log


def test_missing_model_file_with_a_model_name_is_still_a_missing_file(tmp_path):
    log = _error(tmp_path, "pair_style mlip/torch /nonexistent/lif.pt device cpu")
    assert "model file '/nonexistent/lif.pt' does not exist" in log


def test_stress_atom_with_a_plain_mace_export_suggests_halo(tmp_path, mace_float64):
    extra = "compute sa all stress/atom NULL virial\ndump v all custom 1 v.dump id c_sa[1]\n"
    log = _error(tmp_path, f"pair_style mlip/torch {mace_float64[1]}", extra=extra)
    assert "per-atom virials" in log and "ionmd export --halo" in log


def test_mode_halo_with_deepmd_names_the_family_not_mace(tmp_path):
    log = _error(tmp_path, f"pair_style mlip/torch {SE_A} mode halo")
    assert "is a deepmd model" in log and "remove 'mode halo'" in log
    assert "MACE checkpoint" not in log


def test_mode_halo_with_a_plain_mace_export_says_reexport(tmp_path, mace_float64):
    log = _error(tmp_path, f"pair_style mlip/torch {mace_float64[1]} mode halo")
    assert "plain MACE export" in log and "re-export its checkpoint with --halo" in log


def test_null_type_without_hybrid(tmp_path):
    log = _error(tmp_path, f"pair_style mlip/torch {SE_A}", pair_coeff="pair_coeff * * Li NULL")
    assert "atom type 2 is NULL" in log and "hybrid" in log


def test_bad_deviation_append_value(tmp_path):
    log = _error(tmp_path, f"pair_style mlip/torch {SE_A} {SE_A_NOOPS} deviation 1 d.out deviation_append maybe")
    assert "deviation_append must be yes or no, not 'maybe'" in log


def test_shell_mode_warns_once_and_names_halo_export(tmp_path, mace_float64, mace_halo_float64):
    """65 atoms on 2 ranks: the 2-layer ghost shell holds several ghosts per local atom."""
    atoms = lower_triangular(lif_interstitial())
    shell = run_lammps(atoms, f"pair_style mlip/torch {mace_float64[1]}", SPECIES, tmp_path / "shell", ranks=2)
    assert "mlip/torch: ghost-shell" in shell.log
    warnings = [ln for ln in shell.log.splitlines() if "WARNING" in ln and "ghost-shell mode evaluates" in ln]
    assert len(warnings) == 1, shell.log[-3000:]
    assert "ionmd export --halo" in warnings[0]
    halo = run_lammps(atoms, f"pair_style mlip/torch {mace_halo_float64}", SPECIES, tmp_path / "halo", ranks=2)
    assert "ghost-shell mode evaluates" not in halo.log


def test_deviation_append_keeps_rows_and_writes_one_header(tmp_path):
    atoms = lower_triangular(lif_small())
    committee = f"pair_style mlip/torch {SE_A} {SE_A_NOOPS} deviation 1 {tmp_path / 'devi.out'}"
    run_lammps(atoms, committee, SPECIES, tmp_path / "a")
    run_lammps(atoms, committee + " deviation_append yes", SPECIES, tmp_path / "b")
    text = (tmp_path / "devi.out").read_text().splitlines()
    assert sum(ln.startswith("#") for ln in text) == 1
    assert np.loadtxt(tmp_path / "devi.out", ndmin=2).shape == (2, 7)
    # Without the keyword the file starts afresh (a new run).
    run_lammps(atoms, committee, SPECIES, tmp_path / "c")
    assert np.loadtxt(tmp_path / "devi.out", ndmin=2).shape == (1, 7)
