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


def test_dtype_defaults_to_checkpoint(tmp_path):
    """Without --dtype the export keeps the checkpoint's precision (float32 stays float32)."""
    import torch
    from test_pair_pt2 import small_mace

    ckpt64 = small_mace(tmp_path / "s64.model")
    assert export.export_model(ckpt64, tmp_path / "s64.pt").dtype == "float64"
    ckpt32 = tmp_path / "s32.model"
    torch.save(torch.load(ckpt64, weights_only=False).float(), ckpt32)
    res = export.export_model(ckpt32, tmp_path / "s32.pt")
    assert res.dtype == "float32" and res.max_force_error_eV_A <= export.TOLERANCE["float32"]["force_eV_A"]
    assert torch.jit.load(str(tmp_path / "s32.pt")).model.node_embedding.linear.weight.dtype == torch.float32


def test_cli_export_without_dtype(tmp_path):
    """`ionmd export MODEL -o OUT` (no --dtype) works and reports the checkpoint's dtype."""
    import json
    import subprocess
    import sys

    from test_pair_pt2 import small_mace

    ckpt = small_mace(tmp_path / "s.model")
    proc = subprocess.run([sys.executable, "-m", "ionmd", "export", str(ckpt), "-o", str(tmp_path / "s.pt")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout[proc.stdout.index("{"):])["dtype"] == "float64"
    proc = subprocess.run([sys.executable, "-m", "ionmd", "export", str(ckpt), "-o", str(tmp_path / "x"),
                           "--format", "pt2", "--halo"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--halo is not available with --format pt2" in proc.stderr


def test_pt2_bad_options(tmp_path):
    with pytest.raises(InputError, match="--format"):
        export.export_model(BUNDLED_MACE_CHECKPOINT, tmp_path / "o.pt2", fmt="onnx")
    with pytest.raises(InputError, match="MACE models only"):
        export.export_model(DEEPMD_FIXTURES / "se_e2_a_tiny.pth", tmp_path / "o.pt2", fmt="pt2")
