"""AOTInductor ``.pt2`` MACE packages (``ionmd export --format pt2``) in pair_style mlip/torch.

A small MACE model with random weights (built here, so that the AOTInductor
compile stays under a minute) is exported as TorchScript and as ``.pt2``; LAMMPS
must give the same energies, forces, per-atom energies and virials with both, to
1e-10 in float64, on 1, 2 and 4 ranks (fold and ghost-shell graphs, ranks
without atoms), and match mace's own calculator.
"""

from __future__ import annotations

import os
import time
import zipfile

import numpy as np
import pytest
from conftest import BUNDLED_MACE_CHECKPOINT, lif_interstitial, lif_small, lif_triclinic
from lammps_runner import EV_PER_A3_TO_BAR, lower_triangular, run_lammps

SPECIES = ["Li", "F"]


def small_mace(path, seed: int = 0):
    """A 2-layer MACE of the bundled model's architecture, 4 scalar channels, random weights."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import mace  # noqa: F401
    import torch
    from e3nn import o3
    from mace.tools.scripts_utils import extract_config_mace_model

    bundled = torch.load(BUNDLED_MACE_CHECKPOINT, map_location="cpu", weights_only=False)
    config = extract_config_mace_model(bundled)
    config.update(hidden_irreps=o3.Irreps("4x0e"), MLP_irreps=o3.Irreps("4x0e"), max_ell=1,
                  radial_MLP=[8], num_bessel=4)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        model = bundled.__class__(**config)
    finally:
        torch.set_default_dtype(previous)
    torch.save(model, path)
    return path


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    """(checkpoint, TorchScript export, .pt2 export, pt2 ExportResult, compile seconds)."""
    from ionmd.models.export import export_model

    d = tmp_path_factory.mktemp("pt2")
    ckpt = small_mace(d / "small.model")
    ts = d / "small64.pt"
    export_model(ckpt, ts, dtype="float64")
    pt2 = d / "small64.pt2"
    t0 = time.perf_counter()
    result = export_model(ckpt, pt2, fmt="pt2")  # dtype: the checkpoint's own (float64)
    seconds = time.perf_counter() - t0
    print(f"\n.pt2 export of the small MACE: {seconds:.0f} s ({result.extra})")
    return ckpt, ts, pt2, result, seconds


def test_pt2_export_records_metadata(small_models):
    import torch

    _, _, pt2, result, _ = small_models
    assert result.dtype == "float64" and result.extra["format"] == "pt2"
    assert result.max_energy_error_eV_per_atom <= 1e-10 and result.max_force_error_eV_A <= 1e-10
    meta = torch._inductor.aoti_load_package(str(pt2)).get_metadata()
    assert meta["ionmd.species"] == "Li,F" and float(meta["ionmd.cutoff_A"]) == 4.0
    assert meta["ionmd.num_layers"] == "2" and meta["ionmd.dtype"] == "float64"
    assert meta["ionmd.torch_version"] == torch.__version__ and meta["ionmd.device_type"] == "cpu"


CASES = [
    # (structure, ranks, extra pair_style words, processors grid)
    (lif_interstitial, 1, "", None),            # fold
    (lif_interstitial, 1, "mode shell", None),  # ghost shell on one rank
    (lif_triclinic, 2, "", None),               # ghost shell on two ranks
    (lif_small, 4, "", "4 1 1"),                # ranks without atoms: padded inputs
]


@pytest.mark.parametrize(("structure", "ranks", "words", "grid"), CASES)
def test_pt2_equals_torchscript(structure, ranks, words, grid, small_models, tmp_path):
    _, ts, pt2, _, _ = small_models
    atoms = lower_triangular(structure())
    a = run_lammps(atoms, f"pair_style mlip/torch {ts} {words}", SPECIES, tmp_path / "ts",
                   ranks=ranks, processors=grid)
    b = run_lammps(atoms, f"pair_style mlip/torch {pt2} {words}", SPECIES, tmp_path / "pt2",
                   ranks=ranks, processors=grid)
    n = len(atoms)
    assert abs(a.energy_eV - b.energy_eV) / n < 1e-10
    assert np.abs(a.forces_eV_A - b.forces_eV_A).max() < 1e-10
    assert np.abs(a.atom_energy_eV - b.atom_energy_eV).max() < 1e-10
    assert np.abs(a.pressure_bar - b.pressure_bar).max() < 1e-10 * EV_PER_A3_TO_BAR
    assert abs(a.energy_eV) > 1.0 and np.abs(a.forces_eV_A).max() > 1e-3  # a real test case


def test_pt2_matches_mace_calculator(small_models, tmp_path):
    from mace.calculators import MACECalculator

    ckpt, _, pt2, _, _ = small_models
    atoms = lower_triangular(lif_triclinic())
    ref = atoms.copy()
    ref.calc = MACECalculator(model_paths=str(ckpt), device="cpu", default_dtype="float64")
    res = run_lammps(atoms, f"pair_style mlip/torch {pt2}", SPECIES, tmp_path)
    assert abs(res.energy_eV - ref.get_potential_energy()) / len(atoms) < 1e-10
    assert np.abs(res.forces_eV_A - ref.get_forces()).max() < 1e-10
    s = ref.get_stress(voigt=False)
    p_ref = -EV_PER_A3_TO_BAR * np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]])
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-10 * EV_PER_A3_TO_BAR


def _with_metadata(src, dst, key: str, value: str):
    """Copy of the package ``src`` with one metadata value changed."""
    import json

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("_metadata.json"):
                meta = json.loads(data)
                meta[key] = value
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    return dst


@pytest.mark.parametrize(("key", "value", "words"), [
    ("ionmd.torch_version", "2.11.0+cu126", "torch 2.11.0+cu126"),
    ("ionmd.device_type", "cuda", "on cuda"),
])
def test_pt2_mismatch_refused(key, value, words, small_models, tmp_path):
    _, _, pt2, _, _ = small_models
    other = _with_metadata(pt2, tmp_path / "other.pt2", key, value)
    res = run_lammps(lower_triangular(lif_small()), f"pair_style mlip/torch {other}", SPECIES,
                     tmp_path, check=False)
    assert words in res.log and "re-export it here with `ionmd export" in res.log
    assert "--format pt2 --dtype float64" in res.log and "small.model" in res.log


def test_training_checkpoint_named(tmp_path):
    res = run_lammps(lower_triangular(lif_small()),
                     f"pair_style mlip/torch {BUNDLED_MACE_CHECKPOINT}", SPECIES, tmp_path,
                     check=False)
    assert "MACE training checkpoint" in res.log and "convert it with `ionmd export" in res.log
    assert "corrupted" not in res.log
