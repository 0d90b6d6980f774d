"""The bundled LiF models' ``inputs/models/models.json`` (recipe: ``inputs/make_models.sh``)."""

from __future__ import annotations

import json
from pathlib import Path

from ase import Atoms

from ionmd.examples.lif.sampling import lif_cell
from ionmd.models import bundle

#: The labeller of the bundled LiF training data.
LABELLER = "CHGNet 0.3.0"


def timing_cell() -> Atoms:
    """The cell the bundled models' costs are timed on: 65-atom LiF with a Li interstitial."""
    atoms = lif_cell("interstitial")
    atoms.rattle(0.05, seed=1)
    return atoms


def deepmd_entry(models_dir: Path | str, data: Path | str, dp_env: Path | str | None = None) -> dict:
    """The ``models.json`` entry of the bundled ``lif_deepmd.pth``."""
    return bundle.deepmd_entry(models_dir, "lif_deepmd", data, timing_cell(), dp_env, LABELLER)


def write_models_json(
    models_dir: Path | str,
    data: Path | str,
    dp_env: Path | str | None = None,
    mace_model: Path | str | None = None,
) -> dict:
    """Write ``models_dir/models.json`` from the fit results saved next to the bundled models.

    Reads ``lif_mace.fit.json`` and ``lif_deepmd.fit.json`` in ``models_dir``.
    """
    models_dir = Path(models_dir)
    entries = {}
    mace_fit = json.loads((models_dir / "lif_mace.fit.json").read_text())
    mace_ckpt = Path(mace_model or mace_fit["members"][0]["model"])
    entries["lif_mace"] = {
        "file": "lif_mace.pt",
        "family": "mace",
        "species": mace_fit["species"],
        "cutoff_A": 4.0,
        "architecture": "MACE 16x0e, 2 interactions, correlation 2, max_ell 2, 8 radial basis, "
        "r_max 4.0 A, ZBL pair repulsion",
        "dtype": "float32",
        "labeller": LABELLER,
        "training_data": str(data),
        "n_train": mace_fit["n_train"],
        "n_valid": mace_fit["n_valid"],
        "n_test": mace_fit["n_test"],
        "e0_eV": mace_fit["e0_eV"],
        "e0_source": mace_fit["e0_source"],
        "test_energy_rmse_meV_atom": mace_fit["test_energy_rmse_meV_atom"],
        "test_force_rmse_meV_A": mace_fit["test_force_rmse_meV_A"],
        "cost_us_per_atom_step_python": bundle.mace_cost_us_per_atom(mace_ckpt, timing_cell(),
                                                                     "float32")
        if mace_ckpt.exists()
        else None,
    }
    entries["lif_deepmd"] = deepmd_entry(models_dir, data, dp_env)
    (models_dir / "models.json").write_text(json.dumps(entries, indent=2) + "\n")
    return entries
