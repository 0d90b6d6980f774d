"""The committed DeePMD fixtures load as documented in tests/fixtures/deepmd/README.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

FIX = Path(__file__).parent / "fixtures" / "deepmd"


def _rattled_lif65() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cell of inspect_frozen.py: 65-atom LiF with a Li interstitial, rattled by 0.05 Å."""
    a = 4.03
    base = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    li = (
        np.concatenate(
            [base + np.array([i, j, k]) for i in range(2) for j in range(2) for k in range(2)]
        )
        * a
    )
    pos = np.concatenate([li, li + np.array([0.5, 0, 0]) * a, [[a / 4] * 3]])
    pos = pos + np.random.default_rng(0).normal(0, 0.05, pos.shape)
    return pos, np.array([0] * 32 + [1] * 32 + [0]), np.eye(3) * 2 * a


def test_noops_fixture_loads_without_deepmd_and_matches_the_op_freeze():
    model = torch.jit.load(str(FIX / "se_e2_a_tiny_noops.pth"))
    assert model.get_type_map() == ["Li", "F"]
    assert model.get_rcut() == pytest.approx(5.0)
    assert not model.has_message_passing()
    pos, types, box = _rattled_lif65()
    out = model(
        torch.tensor(pos.reshape(1, -1)),
        torch.tensor(types.reshape(1, -1)),
        torch.tensor(box.reshape(1, 9)),
    )
    # Energy of the same checkpoint frozen with deepmd's op library, evaluated in the DeePMD env.
    assert float(out["energy"].sum()) == pytest.approx(-290.4220768136541, abs=1e-9)
    forces = out["force"].detach().numpy()[0]
    assert forces.shape == (65, 3)
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10)  # translational invariance


def test_op_fixtures_reference_deepmd_ops():
    schemas = (FIX / "deepmd_op_schemas.txt").read_text()
    assert (
        "deepmd::tabulate_fusion_se_a(Tensor _0, Tensor _1, Tensor _2, Tensor _3, int _4) -> Tensor[] _0"
        in schemas
    )
    assert "deepmd::border_op(" in schemas
    import zipfile

    for name, op in (
        ("se_e2_a_tiny.pth", "ops.deepmd.tabulate_fusion_se_a"),
        ("dpa2_tiny.pth", "ops.deepmd.border_op"),
    ):
        with zipfile.ZipFile(FIX / name) as z:
            code = "".join(
                z.read(n).decode() for n in z.namelist() if "/code/" in n and n.endswith(".py")
            )
        assert op in code
    with zipfile.ZipFile(FIX / "se_e2_a_tiny_noops.pth") as z:
        code = "".join(
            z.read(n).decode() for n in z.namelist() if "/code/" in n and n.endswith(".py")
        )
    assert "ops.deepmd." not in code
