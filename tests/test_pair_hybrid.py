"""pair_style mlip/torch as a sub-style of ``hybrid``, ``hybrid/overlay`` and ``hybrid/scaled``.

Each combination must equal the sum of its parts, evaluated apart in the same
decomposition: mlip/torch alone plus the other sub-style alone (zbl, or
coul/long with Ewald sums), to round-off in float64, in fold (1 rank), halo (2, 4
ranks) and ghost-shell mode. Halo exchange inside hybrid used to overrun LAMMPS's
buffers, which hybrid sizes when ``pair_style`` is parsed.

Types that mlip/torch does not handle (``NULL`` in its ``pair_coeff``) hold no
place in the model's graph: the model's energy is that of the mapped atoms alone,
the unmapped atoms get forces from the other sub-style only.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import lif_interstitial
from lammps_runner import lower_triangular, run_lammps

SPECIES = ["Li", "F"]
ZBL = "zbl 1.0 1.5"
ZBL_COEFF = "pair_coeff * * zbl 3 3\npair_coeff 1 2 zbl 3 9\npair_coeff 2 2 zbl 9 9"
COUL = "coul/long 6.0"
COUL_SETUP = ("fix q all property/atom q ghost yes\nset type 1 charge 0.8\nset type 2 charge -0.8\n"
              "kspace_style ewald 1e-8\n")
# mode (as named in the log) that mlip/torch runs in, by rank count
MODE = {1: "fold", 2: "halo", 4: "halo"}


def _alone(coeff: str) -> str:
    """The hybrid ``pair_coeff`` lines of zbl as lines for ``pair_style zbl`` alone."""
    return coeff.replace(" zbl ", " ")


def _structure():
    return lower_triangular(lif_interstitial())


def _close(res, ref, n_atoms: int, tol: float = 1e-10):
    """Energy per atom, forces (eV/A) and pressure (bar, relative to its scale) to ``tol``."""
    assert abs(res.energy_eV - ref.energy_eV) < tol * n_atoms
    assert np.abs(res.forces_eV_A - ref.forces_eV_A).max() < tol
    scale = max(1.0, np.abs(ref.pressure_bar).max())
    assert np.abs(res.pressure_bar - ref.pressure_bar).max() < tol * scale


class _Sum:
    """A LammpsResult-like sum of two parts (per-atom energies included)."""

    def __init__(self, a, b, wa: float = 1.0, wb: float = 1.0):
        self.energy_eV = wa * a.energy_eV + wb * b.energy_eV
        self.forces_eV_A = wa * a.forces_eV_A + wb * b.forces_eV_A
        self.pressure_bar = wa * a.pressure_bar + wb * b.pressure_bar
        self.atom_energy_eV = wa * a.atom_energy_eV + wb * b.atom_energy_eV


@pytest.fixture(scope="module")
def parts(mace_halo_float64, tmp_path_factory):
    """Stand-alone results, computed once: mlip/torch on 1, 2, 4 ranks, zbl, coul/long + ewald."""
    atoms = _structure()
    root = tmp_path_factory.mktemp("parts")
    out = {}
    for ranks in (1, 2, 4):
        out["mlip", ranks] = run_lammps(atoms, f"pair_style mlip/torch {mace_halo_float64}", SPECIES,
                                        root / f"mlip{ranks}", ranks=ranks)
    out["zbl"] = run_lammps(atoms, f"pair_style {ZBL}", SPECIES, root / "zbl", pair_coeff=_alone(ZBL_COEFF))
    out["coul"] = run_lammps(atoms, f"pair_style {COUL}", SPECIES, root / "coul",
                             pair_coeff="pair_coeff * *", extra=COUL_SETUP)
    return out


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_overlay_with_zbl_is_the_sum_of_the_parts(ranks, parts, mace_halo_float64, tmp_path):
    atoms = _structure()
    res = run_lammps(atoms, f"pair_style hybrid/overlay mlip/torch {mace_halo_float64} {ZBL}", SPECIES,
                     tmp_path, ranks=ranks, pair_coeff="pair_coeff * * mlip/torch Li F\n" + ZBL_COEFF)
    assert f"mlip/torch: {MODE[ranks]}" in res.log
    _close(res, _Sum(parts["mlip", ranks], parts["zbl"]), len(atoms))
    assert np.abs(res.atom_energy_eV - _Sum(parts["mlip", ranks], parts["zbl"]).atom_energy_eV).max() < 1e-10


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_overlay_with_coul_long_and_ewald_is_the_sum_of_the_parts(ranks, parts, mace_halo_float64, tmp_path):
    atoms = _structure()
    res = run_lammps(atoms, f"pair_style hybrid/overlay mlip/torch {mace_halo_float64} {COUL}", SPECIES,
                     tmp_path, ranks=ranks, pair_coeff="pair_coeff * * mlip/torch Li F\npair_coeff * * coul/long",
                     extra=COUL_SETUP)
    assert f"mlip/torch: {MODE[ranks]}" in res.log
    _close(res, _Sum(parts["mlip", ranks], parts["coul"]), len(atoms))


def test_shell_mode_inside_overlay(parts, mace_halo_float64, tmp_path):
    atoms = _structure()
    res = run_lammps(atoms, f"pair_style hybrid/overlay mlip/torch {mace_halo_float64} mode shell {ZBL}",
                     SPECIES, tmp_path, ranks=2, pair_coeff="pair_coeff * * mlip/torch Li F\n" + ZBL_COEFF)
    assert "mlip/torch: ghost-shell" in res.log
    _close(res, _Sum(parts["mlip", 2], parts["zbl"]), len(atoms))


@pytest.mark.parametrize(("ranks", "words"), [(1, "mode halo"), (2, "")])
def test_scaled_weights_each_part(ranks, words, parts, mace_halo_float64, tmp_path):
    """hybrid/scaled 0.7 mlip/torch + 1.3 zbl; on one rank ``mode halo`` exchanges with periodic images."""
    atoms = _structure()
    res = run_lammps(atoms, f"pair_style hybrid/scaled 0.7 mlip/torch {mace_halo_float64} {words} 1.3 {ZBL}",
                     SPECIES, tmp_path, ranks=ranks, pair_coeff="pair_coeff * * mlip/torch Li F\n" + ZBL_COEFF)
    assert "mlip/torch: halo" in res.log
    _close(res, _Sum(parts["mlip", ranks], parts["zbl"], 0.7, 1.3), len(atoms))


# ---- NULL types: atoms that mlip/torch does not handle ---------------------------------

N_OTHER = 5   # Li atoms turned into Na, an element the model does not know


def _with_other_species():
    atoms = _structure()
    symbols = atoms.get_chemical_symbols()
    li = [i for i, s in enumerate(symbols) if s == "Li"]
    for i in li[3:3 + 2 * N_OTHER:2]:
        symbols[i] = "Na"
    atoms.set_chemical_symbols(symbols)
    return atoms


ZBL3 = ("pair_coeff 1 1 zbl 3 3\npair_coeff 1 2 zbl 3 9\npair_coeff 2 2 zbl 9 9\n"
        "pair_coeff 1 3 zbl 3 11\npair_coeff 2 3 zbl 9 11\npair_coeff 3 3 zbl 11 11")
ZBL3_ONLY_NA = "pair_coeff 1*2 1*2 none\npair_coeff 1 3 zbl 3 11\npair_coeff 2 3 zbl 9 11\npair_coeff 3 3 zbl 11 11"


@pytest.fixture(scope="module")
def null_parts(mace_halo_float64, mace_float64, tmp_path_factory):
    """The model on the mapped atoms alone (Na deleted, same cell), and zbl on all pairs / pairs with Na."""
    atoms = _with_other_species()
    mapped = atoms[[s != "Na" for s in atoms.get_chemical_symbols()]]
    root = tmp_path_factory.mktemp("null_parts")
    out = {}
    for ranks in (1, 2):
        out["model", ranks] = run_lammps(mapped, f"pair_style mlip/torch {mace_halo_float64}", SPECIES,
                                         root / f"model{ranks}", ranks=ranks)
    out["plain_model"] = run_lammps(mapped, f"pair_style mlip/torch {mace_float64[1]}", SPECIES,
                                    root / "plain")
    species3 = [*SPECIES, "Na"]
    out["zbl_all"] = run_lammps(atoms, f"pair_style {ZBL}", species3, root / "zbl_all", pair_coeff=_alone(ZBL3))
    out["zbl_na"] = run_lammps(atoms, f"pair_style hybrid {ZBL}", species3, root / "zbl_na",
                               pair_coeff=ZBL3_ONLY_NA)
    return atoms, mapped, out


def _expected(atoms, model_part, other_part):
    """Model forces/energies on the mapped atoms (in atom-ID order) plus the other style on all atoms."""
    is_mapped = np.array([s != "Na" for s in atoms.get_chemical_symbols()])
    forces = other_part.forces_eV_A.copy()
    forces[is_mapped] += model_part.forces_eV_A
    atom_energy = other_part.atom_energy_eV.copy()
    atom_energy[is_mapped] += model_part.atom_energy_eV
    return model_part.energy_eV + other_part.energy_eV, forces, atom_energy, \
        model_part.pressure_bar + other_part.pressure_bar


@pytest.mark.parametrize(("style", "ranks"), [("hybrid/overlay", 1), ("hybrid/overlay", 2), ("hybrid", 2)])
def test_null_type_is_left_out_of_the_model(style, ranks, null_parts, mace_halo_float64, tmp_path):
    atoms, _, parts_ = null_parts
    coeff = ZBL3 if style == "hybrid/overlay" else ZBL3_ONLY_NA.split("\n", 1)[1]
    res = run_lammps(atoms, f"pair_style {style} mlip/torch {mace_halo_float64} {ZBL}", [*SPECIES, "Na"],
                     tmp_path, ranks=ranks, pair_coeff="pair_coeff * * mlip/torch Li F NULL\n" + coeff)
    other = parts_["zbl_all"] if style == "hybrid/overlay" else parts_["zbl_na"]
    energy, forces, atom_energy, pressure = _expected(atoms, parts_["model", ranks], other)
    n = len(atoms)
    assert abs(res.energy_eV - energy) < 1e-10 * n
    assert np.abs(res.forces_eV_A - forces).max() < 1e-10
    assert np.abs(res.atom_energy_eV - atom_energy).max() < 1e-10
    assert np.abs(res.pressure_bar - pressure).max() < 1e-10 * max(1.0, np.abs(pressure).max())


def test_null_type_with_the_plain_export_in_fold_mode(null_parts, mace_float64, tmp_path):
    """The plain (non-halo) MACE export, too, sees only the mapped atoms."""
    atoms, _, parts_ = null_parts
    res = run_lammps(atoms, f"pair_style hybrid/overlay mlip/torch {mace_float64[1]} {ZBL}", [*SPECIES, "Na"],
                     tmp_path, pair_coeff="pair_coeff * * mlip/torch Li F NULL\n" + ZBL3)
    energy, forces, _, _ = _expected(atoms, parts_["plain_model"], parts_["zbl_all"])
    assert abs(res.energy_eV - energy) < 1e-10 * len(atoms)
    assert np.abs(res.forces_eV_A - forces).max() < 1e-10


def test_null_type_with_deepmd_on_two_ranks(null_parts, tmp_path):
    """DeePMD, too: its extended system and neighbor list hold the mapped atoms only."""
    from conftest import DEEPMD_FIXTURES

    atoms, mapped, parts_ = null_parts
    model = DEEPMD_FIXTURES / "se_e2_a_tiny_noops.pth"
    alone = run_lammps(mapped, f"pair_style mlip/torch {model}", SPECIES, tmp_path / "alone", ranks=2)
    assert abs(alone.energy_eV) > 1.0
    res = run_lammps(atoms, f"pair_style hybrid/overlay mlip/torch {model} {ZBL}", [*SPECIES, "Na"],
                     tmp_path / "hybrid", ranks=2, pair_coeff="pair_coeff * * mlip/torch Li F NULL\n" + ZBL3)
    energy, forces, atom_energy, pressure = _expected(atoms, alone, parts_["zbl_all"])
    assert abs(res.energy_eV - energy) < 1e-10 * len(atoms)
    assert np.abs(res.forces_eV_A - forces).max() < 1e-10
    assert np.abs(res.atom_energy_eV - atom_energy).max() < 1e-10
    assert np.abs(res.pressure_bar - pressure).max() < 1e-10 * max(1.0, np.abs(pressure).max())
