"""pair_style mlip/torch with DeePMD-kit frozen models, against the model's own
whole-system ``forward(coord, atype, box)`` (evaluated in Python, same torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DEEPMD_FIXTURES, lif_interstitial, lif_small, lif_triclinic
from lammps_runner import EV_PER_A3_TO_BAR, lower_triangular, run_lammps, virial_pressure_bar

SPECIES = ["Li", "F"]
SE_A_OPS = DEEPMD_FIXTURES / "se_e2_a_tiny.pth"  # references deepmd::tabulate_fusion_se_a
SE_A_NOOPS = DEEPMD_FIXTURES / "se_e2_a_tiny_noops.pth"  # built-in ops only
DPA2 = DEEPMD_FIXTURES / "dpa2_tiny.pth"  # message passing


def _load(path: Path):
    import torch

    from ionmd.plugin import deepmd_stubs_path

    if not hasattr(torch.ops.deepmd, "tabulate_fusion_se_a"):
        torch.ops.load_library(str(deepmd_stubs_path()))
    return torch.jit.load(str(path), map_location="cpu")


def reference(path: Path, atoms):
    """Energy (eV), forces (eV/A), virial (eV, 3x3) and atomic energies from forward()."""
    import torch

    model = _load(path)
    types = torch.tensor([[SPECIES.index(s) for s in atoms.get_chemical_symbols()]])
    coord = torch.tensor(atoms.positions.reshape(1, -1))
    box = torch.tensor(np.array(atoms.cell).reshape(1, 9))
    out = model(coord, types, box, None, None, True)
    return (
        float(out["energy"].sum()),
        out["force"].detach().numpy().reshape(-1, 3),
        out["virial"].detach().numpy().reshape(3, 3),
        out["atom_energy"].detach().numpy().reshape(-1),
    )


CASES = [
    (SE_A_OPS, lif_interstitial, 1),
    (SE_A_OPS, lif_interstitial, 2),
    (SE_A_OPS, lif_interstitial, 4),
    (SE_A_NOOPS, lif_triclinic, 1),
    (SE_A_NOOPS, lif_triclinic, 2),
    (SE_A_OPS, lif_small, 1),
    (SE_A_OPS, lif_small, 2),
    (DPA2, lif_interstitial, 1),
]


@pytest.mark.parametrize(("model", "make", "ranks"), CASES,
                         ids=[f"{m.stem}-{f.__name__}-{r}" for m, f, r in CASES])
def test_deepmd_matches_forward(model, make, ranks, tmp_path):
    atoms = lower_triangular(make())
    e_ref, f_ref, v_ref, ea_ref = reference(model, atoms)
    res = run_lammps(atoms, f"pair_style mlip/torch {model}", SPECIES, tmp_path, ranks=ranks)
    n = len(atoms)
    assert abs(res.energy_eV - e_ref) / n < 1e-8
    assert np.abs(res.forces_eV_A - f_ref).max() < 1e-7
    assert np.abs(res.atom_energy_eV - ea_ref).max() < 1e-8
    p_ref = virial_pressure_bar(v_ref, atoms.get_volume())
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-9 * EV_PER_A3_TO_BAR


def test_deepmd_per_atom_virial_sums_to_global(tmp_path):
    """compute stress/atom (per-atom virial, reverse-communicated) sums to the global virial."""
    atoms = lower_triangular(lif_interstitial())
    extra = (
        "compute sa all stress/atom NULL virial\n"
        "compute ssum all reduce sum c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]\n"
        "variable vol equal vol\n"
        "fix p all print 1 \"SUM $(c_ssum[1]:%.12e) $(c_ssum[2]:%.12e) $(c_ssum[4]:%.12e) "
        "$(vol:%.12e)\" file sums.txt screen no\n"
    )
    res = run_lammps(atoms, f"pair_style mlip/torch {SE_A_OPS}", SPECIES, tmp_path, ranks=2,
                     extra=extra)
    sxx, syy, sxy, vol = np.array((tmp_path / "sums.txt").read_text().split()[-4:], float)
    # sum of per-atom stress (pressure*volume units) = -P * V
    assert np.allclose([-sxx / vol, -syy / vol, -sxy / vol], res.pressure_bar[[0, 1, 3]],
                       rtol=1e-9, atol=1e-6)


def test_message_passing_deepmd_refused_on_two_ranks(tmp_path):
    res = run_lammps(lower_triangular(lif_interstitial()), f"pair_style mlip/torch {DPA2}",
                     SPECIES, tmp_path, ranks=2, check=False)
    assert "message-passing DeePMD model" in res.log
    assert "one MPI rank" in res.log


def test_stand_in_op_raises_clearly():
    """A stand-in op that is executed raises an error that says what to do."""
    import torch

    _load(SE_A_OPS)
    t = torch.zeros(1)
    with pytest.raises(RuntimeError, match="stand-in"):
        torch.ops.deepmd.border_op(t, t, t, t, t, t, t, t, t)
