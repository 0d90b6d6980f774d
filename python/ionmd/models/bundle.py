"""Metadata of the bundled models: ``inputs/models/models.json``.

Each entry describes one model file for ``pair_style mlip/torch``: family,
species, cutoff, training data, held-out errors and a measured cost in
µs/atom/step. The cost here is measured in Python (energy + forces of the
65-atom LiF interstitial cell, one thread, median of repeated calls), which is
an upper bound of the plugin's cost for the same model.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np

from ionmd.models.sampling import lif_cell

_DP_TIMER = """
import sys, time, json, torch
torch.set_num_threads(1)
import deepmd.pt  # noqa: F401  (op library)
m = torch.jit.load(sys.argv[1])
d = json.loads(sys.argv[2])
c = torch.tensor(d["pos"], dtype=torch.float64).reshape(1, -1)
t = torch.tensor(d["types"]).reshape(1, -1)
b = torch.tensor(d["cell"], dtype=torch.float64).reshape(1, 9)
for _ in range(3):
    m(c, t, b)
ts = []
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter(); m(c, t, b); ts.append(time.perf_counter() - t0)
ts.sort()
print(json.dumps({"s": ts[len(ts) // 2], "rcut": m.get_rcut(), "type_map": m.get_type_map()}))
"""


def mace_cost_us_per_atom(
    model_path: Path | str, dtype: str = "float32", repeats: int = 20
) -> float:
    """Return the median cost (µs/atom) of one energy+force call of a mace checkpoint on 65-atom LiF."""
    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(1)
    atoms = lif_cell("interstitial")
    atoms.rattle(0.05, seed=1)
    atoms.calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype=dtype)
    times = []
    for i in range(repeats + 3):
        atoms.positions[0, 0] += 1e-4  # force a recomputation
        t0 = time.perf_counter()
        atoms.get_forces()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return float(np.median(times) / len(atoms) * 1e6)


def deepmd_cost_us_per_atom(
    pth: Path | str, dp_env: Path | str, repeats: int = 20
) -> tuple[float, dict]:
    """Return (median cost in µs/atom, metadata) of a frozen DeePMD model's ``forward`` on 65-atom LiF."""
    from ionmd.models.dpenv import env_python, env_vars

    atoms = lif_cell("interstitial")
    atoms.rattle(0.05, seed=1)
    payload = json.dumps(
        {
            "pos": atoms.positions.ravel().tolist(),
            "types": [0 if s == "Li" else 1 for s in atoms.get_chemical_symbols()],
            "cell": np.asarray(atoms.cell).ravel().tolist(),
        }
    )
    proc = subprocess.run(
        [str(env_python(Path(dp_env))), "-c", _DP_TIMER, str(pth), payload, str(repeats)],
        env=env_vars(Path(dp_env)),
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["s"] / len(atoms) * 1e6, out


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
        "labeller": "CHGNet 0.3.0",
        "training_data": str(data),
        "n_train": mace_fit["n_train"],
        "n_valid": mace_fit["n_valid"],
        "n_test": mace_fit["n_test"],
        "e0_eV": mace_fit["e0_eV"],
        "e0_source": mace_fit["e0_source"],
        "test_energy_rmse_meV_atom": mace_fit["test_energy_rmse_meV_atom"],
        "test_force_rmse_meV_A": mace_fit["test_force_rmse_meV_A"],
        "cost_us_per_atom_step_python": mace_cost_us_per_atom(mace_ckpt, "float32")
        if mace_ckpt.exists()
        else None,
    }
    entries["lif_deepmd"] = deepmd_entry(models_dir, data, dp_env)
    (models_dir / "models.json").write_text(json.dumps(entries, indent=2) + "\n")
    return entries


def deepmd_entry(models_dir: Path | str, data: Path | str, dp_env: Path | str | None = None) -> dict:
    """The ``models.json`` entry of the bundled DeePMD model, from its fit and input files.

    Reads ``lif_deepmd.fit.json`` and ``lif_deepmd.input.json`` (the first training run);
    when the fit continued from that run (``ionmd fit deepmd --init-model``), also
    ``lif_deepmd.stage2.input.json``, and the steps of both stages are counted.
    """
    from ionmd.models.dpenv import default_env_path

    models_dir = Path(models_dir)
    dp_fit = json.loads((models_dir / "lif_deepmd.fit.json").read_text())
    env = Path(dp_env) if dp_env else default_env_path()
    cost, meta = deepmd_cost_us_per_atom(models_dir / "lif_deepmd.pth", env)
    dp_input = json.loads((models_dir / "lif_deepmd.input.json").read_text())
    desc = dp_input["model"]["descriptor"]
    stages = [dp_input["training"]["numb_steps"]]
    if dp_fit.get("init_model"):
        stage2 = json.loads((models_dir / "lif_deepmd.stage2.input.json").read_text())
        stages.append(stage2["training"]["numb_steps"])
    return {
        "file": "lif_deepmd.pth",
        "family": "deepmd",
        "species": meta["type_map"],
        "cutoff_A": meta["rcut"],
        "architecture": f"DeePMD se_e2_a, neuron {desc['neuron']}, axis {desc['axis_neuron']}, "
        f"fitting {dp_input['model']['fitting_net']['neuron']}, sel {desc['sel']}",
        "dtype": "float64",
        "labeller": "CHGNet 0.3.0",
        "training_data": str(data),
        "training_steps": sum(stages),
        "training_stages_steps": stages,
        "n_train": dp_fit["n_train"],
        "n_valid": dp_fit["n_valid"],
        "n_test": dp_fit["n_test"],
        "test_energy_rmse_meV_atom": dp_fit["test_energy_rmse_meV_atom"],
        "test_force_rmse_meV_A": dp_fit["test_force_rmse_meV_A"],
        "cost_us_per_atom_step_python": cost,
    }
