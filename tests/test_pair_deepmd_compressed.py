"""Compressed DeePMD models in ionmd's main env: ionmd's own deepmd::tabulate_fusion_* ops.

deepmd-kit's op library is built for one torch (2.11.0 for deepmd-kit 3.2.0); ionmd
registers the same op schemas (lammps_plugin/src/deepmd_tabulate_ops.cpp) so that a
compressed ``.pth`` (``dp --pt compress``) runs with any torch. References come from
deepmd-kit's REAL ops in the torch-2.11 env, committed as fixtures by
``tests/fixtures/deepmd/make_compressed_fixtures.py``:

- ``tabulate_ops_reference.npz``: every tabulate op (se_a, se_atten sorted/unsorted,
  se_r, se_t, se_t_tebd), float64 and float32, outputs and input gradients, on inputs
  that cover the table's inside, its end points, both linear tails and a padding tail;
- ``lif_deepmd_compressed.pth`` + ``.json``: the bundled LiF model compressed, and
  ``DeepPot`` energies/forces/virials of three LiF cells (65, 64, 54 atoms, one triclinic).

None of these tests needs the torch-2.11 env.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from conftest import DEEPMD_FIXTURES
from lammps_runner import EV_PER_A3_TO_BAR, run_lammps, virial_pressure_bar

COMPRESSED = DEEPMD_FIXTURES / "lif_deepmd_compressed.pth"
CELLS = json.loads((DEEPMD_FIXTURES / "lif_deepmd_compressed.json").read_text())
OPS = DEEPMD_FIXTURES / "tabulate_ops_reference.npz"
SPECIES = CELLS["species"]
L_OPS = 5    # last_layer_size of the op fixtures


def _ops():
    import torch

    from ionmd.plugin import deepmd_stubs_path

    if not hasattr(torch.ops.deepmd, "tabulate_fusion_se_a"):
        torch.ops.load_library(str(deepmd_stubs_path()))
    return torch.ops.deepmd


def _atoms(name: str) -> Atoms:
    c = CELLS["cells"][name]
    return Atoms(c["symbols"], positions=c["positions_A"], cell=c["cell_A"], pbc=True)


# ------------------------------------------------------------------ the ops themselves

with np.load(OPS) as _z:
    OP_CASES = sorted({k.split(".in.")[0] for k in _z.files if ".in." in k})


def _call(ops, case: str, inp: dict):
    name = case.split(".")[0]
    if name.startswith("se_atten"):
        return ops.tabulate_fusion_se_atten(inp["table"], inp["info"], inp["em_x"], inp["em"],
                                            inp["two"], L_OPS, name.endswith("_sorted"))[0]
    if name == "se_r":
        return ops.tabulate_fusion_se_r(inp["table"], inp["info"], inp["em"], L_OPS)[0]
    fn = getattr(ops, f"tabulate_fusion_{name}")
    return fn(inp["table"], inp["info"], inp["em_x"], inp["em"], L_OPS)[0]


@pytest.mark.parametrize("case", OP_CASES)
def test_tabulate_op_matches_deepmd(case):
    """Output and every input gradient equal deepmd-kit's op (float64: 1e-12 relative)."""
    import torch

    ops = _ops()
    with np.load(OPS) as z:
        arrays = {k[len(case) + 1:]: z[k] for k in z.files if k.startswith(case + ".")}
    inp = {k[3:]: torch.tensor(v) for k, v in arrays.items() if k.startswith("in.")}
    wrt = [k[5:] for k in arrays if k.startswith("grad.")]
    for k in wrt:
        inp[k].requires_grad_(True)
    out = _call(ops, case, inp)
    grads = torch.autograd.grad((out * torch.tensor(arrays["dy"])).sum(), [inp[k] for k in wrt])
    tol = 1e-12 if case.endswith("f64") else 2e-6
    ref = arrays["out"]
    assert out.shape == ref.shape and out.dtype == inp["table"].dtype
    assert np.abs(out.detach().numpy() - ref).max() <= tol * np.abs(ref).max()
    assert np.abs(ref).max() > 0.1    # a real comparison
    for k, g in zip(wrt, grads, strict=True):
        gref = arrays[f"grad.{k}"]
        assert g.shape == gref.shape, k
        assert np.abs(g.numpy() - gref).max() <= tol * max(np.abs(gref).max(), 1.0), k


def test_tabulate_op_gradient_is_the_derivative_of_its_output():
    """Independent of deepmd: autograd of se_a against central differences (float64)."""
    import torch

    ops = _ops()
    with np.load(OPS) as z:
        table, info = torch.tensor(z["se_a.f64.in.table"]), torch.tensor(z["se_a.f64.in.info"])
        em = torch.tensor(z["se_a.f64.in.em"])
    # One atom, 7 neighbours: both linear tails and points inside rows of both steps
    # (the random fixture table is not continuous across rows: stay inside one row).
    lower, upper, mx, s0, s1 = (float(v) for v in info[:5])
    xs = [lower - 0.3, mx + 2.5, lower + 3.37 * s0, upper - 0.55 * s0, upper + 0.41 * s1,
          upper + 3.73 * s1, mx - 0.5 * s1]
    em = em[:1].clone()
    em[0, :, 0] = torch.tensor(xs)
    em_x = em[0, :, :1].clone().requires_grad_(True)
    em.requires_grad_(True)
    weights = torch.linspace(-1.0, 1.0, 4 * L_OPS, dtype=torch.float64).reshape(1, 4, L_OPS)
    def f(x, e):
        return (ops.tabulate_fusion_se_a(table, info, x, e, L_OPS)[0] * weights).sum()
    gx, ge = torch.autograd.grad(f(em_x, em), [em_x, em])
    h = 1e-6
    for j in range(7):
        dx = torch.zeros_like(em_x)
        dx[j, 0] = h
        fd = float((f(em_x + dx, em) - f(em_x - dx, em)).detach()) / (2 * h)
        assert abs(fd - float(gx[j, 0])) < 1e-6 * max(1.0, abs(fd))
        de = torch.zeros_like(em)
        de[0, j, 2] = h
        fd = float((f(em_x, em + de) - f(em_x, em - de)).detach()) / (2 * h)
        assert abs(fd - float(ge[0, j, 2])) < 1e-7 * max(1.0, abs(fd))


def test_double_backward_is_refused_clearly():
    import torch

    ops = _ops()
    with np.load(OPS) as z:
        table, info = torch.tensor(z["se_a.f64.in.table"]), torch.tensor(z["se_a.f64.in.info"])
        em_x = torch.tensor(z["se_a.f64.in.em_x"]).requires_grad_(True)
        em = torch.tensor(z["se_a.f64.in.em"])
    out = ops.tabulate_fusion_se_a(table, info, em_x, em, L_OPS)[0].sum()
    (g,) = torch.autograd.grad(out, [em_x], create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(g.sum(), [em_x])


def test_bad_table_is_named():
    import torch

    ops = _ops()
    table = torch.zeros(3, 30, dtype=torch.float64)
    info = torch.tensor([0.0, 1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    em = torch.zeros(2, 3, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="30 columns, expected 6 x last_layer_size = 6 x 4"):
        ops.tabulate_fusion_se_a(table, info, torch.zeros(6, 1, dtype=torch.float64), em, 4)
    with pytest.raises(RuntimeError, match="em_x is Float but the table is Double"):
        ops.tabulate_fusion_se_a(table, info, torch.zeros(6, 1), em, 5)
    with pytest.raises(RuntimeError, match="expected 4, 9, 16 or 25"):
        ops.tabulate_fusion_se_a(table, info, torch.zeros(6, 1, dtype=torch.float64),
                                 torch.zeros(2, 3, 5, dtype=torch.float64), 5)


# ------------------------------------------------------------------ the compressed model

def _deepmd(name: str, which: str = "compressed") -> dict:
    return {k: np.array(v) for k, v in CELLS["cells"][name][which].items()}


def test_fixture_is_a_real_compression():
    """deepmd-kit's compressed model is close to, but not the same as, the original."""
    for name in CELLS["cells"]:
        c, u = _deepmd(name), _deepmd(name, "uncompressed")
        df = np.abs(c["forces_eV_A"] - u["forces_eV_A"]).max()
        assert 0 < df < 1e-3, (name, df)
        assert np.abs(c["forces_eV_A"]).max() > 0.1


def test_compressed_model_forward_in_python_matches_deepmd():
    """The whole-system forward() of the compressed .pth, in this torch, equals DeepPot."""
    import torch

    _ops()
    model = torch.jit.load(str(COMPRESSED), map_location="cpu")
    for name in CELLS["cells"]:
        atoms, ref = _atoms(name), _deepmd(name)
        types = torch.tensor([[SPECIES.index(s) for s in atoms.get_chemical_symbols()]])
        out = model(torch.tensor(atoms.positions.reshape(1, -1)), types,
                    torch.tensor(np.array(atoms.cell).reshape(1, 9)), None, None, True)
        assert abs(float(out["energy"].sum()) - ref["energy_eV"]) < 1e-10 * len(atoms)
        assert np.abs(out["force"].detach().numpy().reshape(-1, 3)
                      - ref["forces_eV_A"]).max() < 1e-10


def test_compressed_forces_are_minus_the_energy_gradient():
    """Central differences of the compressed model's energy (through ionmd's ops)."""
    import torch

    _ops()
    model = torch.jit.load(str(COMPRESSED), map_location="cpu")
    atoms = _atoms("interstitial_65")
    types = torch.tensor([[SPECIES.index(s) for s in atoms.get_chemical_symbols()]])
    box = torch.tensor(np.array(atoms.cell).reshape(1, 9))

    def energy_and_forces(pos):
        out = model(torch.tensor(pos.reshape(1, -1)), types, box, None, None, False)
        return float(out["energy"].sum()), out["force"].detach().numpy().reshape(-1, 3)

    _, forces = energy_and_forces(atoms.positions)
    h = 1e-4
    for atom in (0, 31, 64):    # a Li, an F and the interstitial Li
        for axis in range(3):
            plus, minus = atoms.positions.copy(), atoms.positions.copy()
            plus[atom, axis] += h
            minus[atom, axis] -= h
            fd = -(energy_and_forces(plus)[0] - energy_and_forces(minus)[0]) / (2 * h)
            assert abs(fd - forces[atom, axis]) < 1e-6, (atom, axis, fd, forces[atom, axis])
    assert np.abs(forces).max() > 0.1


PAIR_CASES = [("interstitial_65", 1), ("interstitial_65", 2), ("rattled_64", 2),
              ("triclinic_54", 1)]


@pytest.mark.parametrize(("name", "ranks"), PAIR_CASES, ids=[f"{n}-{r}" for n, r in PAIR_CASES])
def test_compressed_model_through_pair_style_matches_deepmd(name, ranks, tmp_path):
    """pair_style mlip/torch + ionmd's ops vs DeepPot + deepmd-kit's ops (float64)."""
    atoms, ref = _atoms(name), _deepmd(name)
    res = run_lammps(atoms, f"pair_style mlip/torch {COMPRESSED}", SPECIES, tmp_path,
                     ranks=ranks)
    n = len(atoms)
    assert abs(res.energy_eV - ref["energy_eV"]) < 1e-10 * n
    assert np.abs(res.forces_eV_A - ref["forces_eV_A"]).max() < 1e-10
    assert np.abs(res.atom_energy_eV - ref["atom_energy_eV"]).max() < 1e-10
    p_ref = virial_pressure_bar(ref["virial_eV"], atoms.get_volume())
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-10 * EV_PER_A3_TO_BAR
