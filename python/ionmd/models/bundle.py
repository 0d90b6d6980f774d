"""Metadata of bundled models: the entries of a ``models.json`` beside the model files.

Each entry describes one model file for ``pair_style mlip/torch``: family,
species, cutoff, training data, held-out errors and a measured cost in
µs/atom/step. The cost is measured in Python (energy + forces of a given cell,
one thread, median of repeated calls), which is an upper bound of the plugin's
cost for the same model. The atom types of the timed cell come from the model's
own species list. A material's bundle (file names, architecture notes, the timed
cell) is its example's recipe, e.g. :mod:`ionmd.examples.lif.bundle`.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import InputError

_DP_TIMER = """
import sys, time, json, torch
torch.set_num_threads(1)
import deepmd.pt  # noqa: F401  (op library)
m = torch.jit.load(sys.argv[1])
d = json.loads(sys.argv[2])
type_map = list(m.get_type_map())
missing = sorted(set(d["symbols"]) - set(type_map))
if missing:
    print(json.dumps({"error": "species " + ", ".join(missing) + " not in the model's type_map "
                      + " ".join(type_map)}))
    sys.exit(0)
c = torch.tensor(d["pos"], dtype=torch.float64).reshape(1, -1)
t = torch.tensor([type_map.index(s) for s in d["symbols"]]).reshape(1, -1)
b = torch.tensor(d["cell"], dtype=torch.float64).reshape(1, 9)
for _ in range(3):
    m(c, t, b)
ts = []
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter(); m(c, t, b); ts.append(time.perf_counter() - t0)
ts.sort()
print(json.dumps({"s": ts[len(ts) // 2], "rcut": m.get_rcut(), "type_map": type_map}))
"""


def mace_cost_us_per_atom(
    model_path: Path | str, atoms: Atoms, dtype: str = "float32", repeats: int = 20
) -> float:
    """Return the median cost (µs/atom) of one energy+force call of a mace checkpoint on ``atoms``."""
    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(1)
    atoms = atoms.copy()
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
    pth: Path | str, dp_env: Path | str, atoms: Atoms, repeats: int = 20
) -> tuple[float, dict]:
    """Return (median cost in µs/atom, metadata) of a frozen DeePMD model's ``forward`` on ``atoms``.

    Atom types are the indices of the symbols in the model's ``type_map``; the metadata
    holds the model's ``rcut`` and ``type_map``.

    Raises
    ------
    InputError
        If ``atoms`` holds a species the model does not know.
    """
    from ionmd.models.dpenv import env_python, env_vars

    payload = json.dumps(
        {
            "pos": atoms.positions.ravel().tolist(),
            "symbols": atoms.get_chemical_symbols(),
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
    if "error" in out:
        raise InputError(f"{pth}: {out['error']}")
    return out["s"] / len(atoms) * 1e6, out


def deepmd_entry(
    models_dir: Path | str,
    name: str,
    data: Path | str,
    atoms: Atoms,
    dp_env: Path | str | None = None,
    labeller: str = "",
) -> dict:
    """The ``models.json`` entry of a bundled DeePMD model ``NAME.pth``, from its fit and input files.

    Reads ``NAME.fit.json`` and ``NAME.input.json`` (the first training run);
    when the fit continued from that run (``ionmd fit deepmd --init-model``), also
    ``NAME.stage2.input.json``, and the steps of both stages are counted. The cost is
    timed on ``atoms``.
    """
    from ionmd.models.dpenv import default_env_path

    models_dir = Path(models_dir)
    dp_fit = json.loads((models_dir / f"{name}.fit.json").read_text())
    env = Path(dp_env) if dp_env else default_env_path()
    cost, meta = deepmd_cost_us_per_atom(models_dir / f"{name}.pth", env, atoms)
    dp_input = json.loads((models_dir / f"{name}.input.json").read_text())
    desc = dp_input["model"]["descriptor"]
    stages = [dp_input["training"]["numb_steps"]]
    if dp_fit.get("init_model"):
        stage2 = json.loads((models_dir / f"{name}.stage2.input.json").read_text())
        stages.append(stage2["training"]["numb_steps"])
    return {
        "file": f"{name}.pth",
        "family": "deepmd",
        "species": meta["type_map"],
        "cutoff_A": meta["rcut"],
        "architecture": f"DeePMD se_e2_a, neuron {desc['neuron']}, axis {desc['axis_neuron']}, "
        f"fitting {dp_input['model']['fitting_net']['neuron']}, sel {desc['sel']}",
        "dtype": "float64",
        "labeller": labeller,
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
