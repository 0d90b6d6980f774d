"""``run_case`` resumes only a converged result of exactly the same calculation."""

from __future__ import annotations

import pytest
from test_neb_report import neb_result

from ionmd.errors import InputError
from ionmd.examples.lif.neb_cases import case_cell, reusable, run_case
from ionmd.filehash import file_sha256
from ionmd.neb.result import NEBResult
from ionmd.neb.runner import neb_command


def stored(sha: str) -> NEBResult:
    r = neb_result("m.pt", "knockoff", 0.16, sha=sha)
    r.n_cells, r.a_A = 3, 4.03
    return r


def test_reusable_needs_same_model_case_cell_images_and_tolerance():
    sha = "ab" * 32
    same = dict(sha256=sha, case="knockoff", n_cells=3, a_A=4.03, n_images=5, ftol_eV_A=0.01)
    assert reusable(stored(sha), **same)
    assert reusable(stored(sha), **(same | {"ftol_eV_A": 0.02}))  # stored run was tighter
    for change in (
        {"sha256": "cd" * 32},  # another model file (e.g. a retrained one)
        {"case": "direct"},
        {"n_cells": 4},
        {"a_A": 4.09},
        {"n_images": 7},
        {"ftol_eV_A": 0.005},  # asks for a tighter result than stored
    ):
        assert not reusable(stored(sha), **(same | change)), change
    r = stored(sha)
    r.converged = False
    assert not reusable(r, **same)


def test_run_case_returns_a_stored_converged_result_without_running(tmp_path):
    model = tmp_path / "m.pt"
    model.write_bytes(b"not a real model: never loaded when the result is reused")
    out = tmp_path / "out"
    out.mkdir()
    stored(file_sha256(model)).write_json(out / "neb.json")
    r = run_case(model, "knockoff", out, n_cells=3, n_images=5, a_A=4.03)
    assert r.barrier_forward_eV == pytest.approx(0.165, abs=1e-9)  # 0.16 + half the 10 meV tilt
    assert sorted(p.name for p in out.iterdir()) == ["neb.json"]
    with pytest.raises(InputError, match="missing.pt does not exist"):
        run_case(tmp_path / "missing.pt", "knockoff", out)


def test_cell_text_and_partition_command():
    assert case_cell(3, 4.03, 217) == "3x3x3 conventional, a = 4.03 Å, 217 atoms"
    cmd = neb_command(5, ranks_per_image=2, lmp="lmp")
    assert cmd[:3] == ["mpirun", "-np", "10"] and cmd[cmd.index("-partition") + 1] == "5x2"
    with pytest.raises(InputError, match="ranks per image"):
        neb_command(5, ranks_per_image=0)


def test_model_species_from_metadata_and_clear_errors(tmp_path):
    """``ionmd neb --model`` without --species takes the species from the model's metadata."""
    import zipfile
    from pathlib import Path

    from ionmd.neb.potential import model_species

    m = tmp_path / "m.pt"
    with zipfile.ZipFile(m, "w") as z:
        z.writestr("m/extra/ionmd.json", '{"species": ["Na", "Cl", "O"]}')
        z.writestr("m/data.pkl", b"")
    assert model_species(m) == ["Na", "Cl", "O"]
    bundled = Path(__file__).resolve().parents[1] / "inputs" / "models" / "lif_mace.pt"
    if bundled.is_file():
        assert model_species(bundled) == ["Li", "F"]
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    with pytest.raises(InputError, match="junk.pt is not a TorchScript archive"):
        model_species(junk)
    with pytest.raises(InputError, match="does not exist"):
        model_species(tmp_path / "none.pt")
