"""`ionmd export`: exported models agree with the originals, or nothing is written."""

from __future__ import annotations

import pytest
from conftest import BUNDLED_MACE_CHECKPOINT, DEEPMD_FIXTURES

from ionmd.errors import InputError, IonmdError
from ionmd.models import export


def test_mace_float64_round_trip(tmp_path):
    out = tmp_path / "m.pt"
    res = export.export_model(BUNDLED_MACE_CHECKPOINT, out, dtype="float64")
    assert out.is_file()
    assert res.max_energy_error_eV_per_atom <= 1e-10 and res.max_force_error_eV_A <= 1e-10
    assert res.species == ["Li", "F"] and res.cutoff_A == pytest.approx(4.0)


def test_mismatch_refuses_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(export.TOLERANCE, "float32", {"energy_eV_per_atom": 0.0, "force_eV_A": 0.0})
    out = tmp_path / "m32.pt"
    with pytest.raises(IonmdError, match="refused"):
        export.export_model(BUNDLED_MACE_CHECKPOINT, out, dtype="float32")
    assert not out.exists()


def test_deepmd_frozen_copied(tmp_path):
    res = export.export_model(DEEPMD_FIXTURES / "se_e2_a_tiny.pth", tmp_path / "dp.pth")
    assert res.family == "deepmd" and res.species == ["Li", "F"] and res.cutoff_A == 5.0


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        export.export_model(tmp_path / "missing.model", tmp_path / "o.pt")
    bad = tmp_path / "bad.model"
    bad.write_text("nonsense")
    with pytest.raises(InputError, match="bad.model"):
        export.export_model(bad, tmp_path / "o.pt")
    with pytest.raises(InputError, match="--dtype"):
        export.export_model(BUNDLED_MACE_CHECKPOINT, tmp_path / "o.pt", dtype="float16")
