"""pair_style mlip/torch with MACE: LAMMPS against mace's own calculator, on 1, 2 and 4 ranks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lif_interstitial, lif_small, lif_triclinic
from lammps_runner import EV_PER_A3_TO_BAR, lower_triangular, run_lammps

SPECIES = ["Li", "F"]
STRUCTURES = {"interstitial": lif_interstitial, "triclinic": lif_triclinic, "small": lif_small}

CASES = [
    # (structure, ranks, extra pair_style words, processors grid)
    ("interstitial", 1, "", None),          # fold mode: periodic graph of local atoms
    ("interstitial", 1, "mode shell", None),  # ghost shell on one rank
    ("interstitial", 2, "", None),
    ("interstitial", 4, "", None),
    ("triclinic", 1, "", None),
    ("triclinic", 2, "", None),
    ("small", 1, "", None),
    ("small", 4, "", "4 1 1"),              # two of the four ranks own no atom
]


@pytest.mark.parametrize(("name", "ranks", "words", "grid"), CASES)
def test_mace_matches_calculator(name, ranks, words, grid, mace_float64, mace_calculator, tmp_path):
    atoms = lower_triangular(STRUCTURES[name]())
    ref = atoms.copy()
    ref.calc = mace_calculator
    e_ref = ref.get_potential_energy()
    f_ref = ref.get_forces()
    s_ref = ref.get_stress(voigt=False)  # eV/A^3, ASE sign (tensile positive)

    res = run_lammps(
        atoms, f"pair_style mlip/torch {mace_float64[1]} {words}", SPECIES, tmp_path,
        ranks=ranks, processors=grid,
    )
    n = len(atoms)
    assert abs(res.energy_eV - e_ref) / n < 1e-8
    assert np.abs(res.forces_eV_A - f_ref).max() < 1e-7
    # LAMMPS pressure from the virial is minus the stress.
    p_ref = -EV_PER_A3_TO_BAR * np.array(
        [s_ref[0, 0], s_ref[1, 1], s_ref[2, 2], s_ref[0, 1], s_ref[0, 2], s_ref[1, 2]]
    )
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-9 * EV_PER_A3_TO_BAR  # 1e-9 eV/A^3
    # Per-atom energies sum to the total.
    assert abs(res.atom_energy_eV.sum() - e_ref) < 1e-8 * n
    if grid:
        assert "0 ave" in res.log or "min" in res.log


def test_mace_float32_export_close(mace_float64, mace_calculator, tmp_path):
    """The float32 export is faster; its force error against float64 stays small."""
    from ionmd.models.export import export_model

    out = tmp_path / "m32.pt"
    result = export_model(mace_float64[0], out, dtype="float32")
    assert result.dtype == "float32"
    atoms = lower_triangular(lif_interstitial())
    ref = atoms.copy()
    ref.calc = mace_calculator
    res = run_lammps(atoms, f"pair_style mlip/torch {out}", SPECIES, tmp_path / "run")
    assert np.abs(res.forces_eV_A - ref.get_forces()).max() < 1e-4
    assert abs(res.energy_eV - ref.get_potential_energy()) / len(atoms) < 1e-5
