"""The halo-exchange MACE module (ionmd export --halo), checked in Python.

Its energy and forces on a periodic cell must equal mace's own calculator, both
on the folded graph (images as edge vectors) and on a graph with explicit ghost
nodes whose features arrive through ``ionmd::halo_exchange`` (index-copy form).
The coupling to mace-torch internals is checked so that a mace-torch release
that renames a block fails here, loudly, rather than in LAMMPS.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BUNDLED_MACE_CHECKPOINT, lif_interstitial, lif_triclinic


@pytest.fixture(scope="module")
def halo_float64(mace_halo_float64):
    import json

    import torch

    from ionmd.models import mace_halo

    mace_halo.load_ops_library()
    extra = {"ionmd.json": ""}
    module = torch.jit.load(str(mace_halo_float64), _extra_files=extra)
    return module, json.loads(extra["ionmd.json"]), mace_halo_float64


def test_halo_export_metadata(halo_float64):
    module, meta, _ = halo_float64
    # 16x0e features cross the halo between the two interaction layers.
    assert meta["halo"] is True and meta["halo_width"] == 16
    assert meta["num_layers"] == 2 and meta["cutoff_A"] == 4.0
    assert int(module.halo_width) == 16


@pytest.mark.parametrize("ghosts", [False, True])
@pytest.mark.parametrize("make", [lif_interstitial, lif_triclinic])
def test_halo_module_matches_calculator(halo_float64, mace_calculator, ghosts, make):
    import torch

    from ionmd.models import mace_halo

    module = halo_float64[0]
    atoms = make()
    ref = atoms.copy()
    ref.calc = mace_calculator
    energy, forces = mace_halo.evaluate_halo(module, atoms, [3, 9], 4.0, torch.float64, ghosts=ghosts)
    assert abs(energy - ref.get_potential_energy()) / len(atoms) < 1e-10
    assert np.abs(forces - ref.get_forces()).max() < 1e-9


def test_halo_exchange_op_index_form():
    """Forward copies owners' rows to ghosts; backward sums ghost gradients onto owners."""
    import torch

    from ionmd.models import mace_halo

    mace_halo.load_ops_library()
    local = torch.arange(12.0, dtype=torch.float64).reshape(4, 3).requires_grad_(True)
    owner = torch.tensor([2, 0, 2])
    out = torch.ops.ionmd.halo_exchange(local, owner)
    assert torch.equal(out[4:], local.detach()[owner])
    weights = torch.arange(21.0, dtype=torch.float64).reshape(7, 3)
    (out * weights).sum().backward()
    expected = weights[:4].clone()
    expected[2] += weights[4] + weights[6]
    expected[0] += weights[5]
    assert torch.equal(local.grad, expected)


def test_mace_internals_check_fails_loudly():
    from ionmd.errors import IonmdError
    from ionmd.models import mace_halo
    from ionmd.models.export import _load_mace

    model = _load_mace(BUNDLED_MACE_CHECKPOINT)
    mace_halo.check_mace_internals(model)  # the installed mace-torch matches
    del model.radial_embedding
    with pytest.raises(IonmdError, match="radial_embedding"):
        mace_halo.check_mace_internals(model)


def test_halo_refused_for_deepmd(tmp_path):
    from conftest import DEEPMD_FIXTURES

    from ionmd.errors import InputError
    from ionmd.models.export import export_model

    with pytest.raises(InputError, match="MACE models only"):
        export_model(DEEPMD_FIXTURES / "se_e2_a_tiny.pth", tmp_path / "x.pth", halo=True)
