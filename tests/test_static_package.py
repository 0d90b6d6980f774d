"""The static route (lammps_plugin/static): pair_style mlip/torch as the LAMMPS package ML-IONMD.

The cheap tests run ``install_package.py`` against a synthetic LAMMPS-like tree whose
cmake/CMakeLists.txt carries the package lists in the format of LAMMPS's own, and check
what lands where LAMMPS's CMake looks for it. With IONMD_LAMMPS_SRC pointing at a
scratch copy of a real LAMMPS source tree, ``test_real_lammps_build`` installs into it,
builds lmp the normal LAMMPS way (tens of minutes on 2 cores) and compares it with the
plugin; it is skipped otherwise. IONMD_LAMMPS_BUILD names an existing build directory
of that tree (configured with -D PKG_ML-IONMD=on) to update instead of a fresh serial one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DEEPMD_FIXTURES, ROOT, lif_small

STATIC = ROOT / "lammps_plugin" / "static"
SCRIPT = STATIC / "install_package.py"
SOURCES = ROOT / "lammps_plugin" / "src"

# The two lists the script edits, laid out as in LAMMPS's cmake/CMakeLists.txt (22 Jul
# 2025 and 4 Jul 2026 alike); the second foreach(PKG_WITH_INCL ...) must stay untouched.
CMAKELISTS = """\
project(lammps CXX)
set(STANDARD_PACKAGES
  ADIOS
  ML-PACE
  PLUGIN
  YAFF)

set(SUFFIX_PACKAGES CORESHELL GPU KOKKOS OPT INTEL OPENMP)

foreach(PKG_WITH_INCL KSPACE PYTHON ML-IAP VORONOI
        PLUMED ML-PACE LEPTON)
  if(PKG_${PKG_WITH_INCL})
    include(Packages/${PKG_WITH_INCL})
  endif()
endforeach()

foreach(PKG_WITH_INCL CORESHELL DPD-BASIC OPENMP KOKKOS OPT INTEL GPU)
  if(PKG_${PKG_WITH_INCL})
    include(Packages/${PKG_WITH_INCL})
  endif()
endforeach()
"""


def fake_lammps(root: Path, cmakelists: str = CMAKELISTS) -> Path:
    """A directory with the parts of a LAMMPS source tree that the script touches."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "pair.h").write_text("// stand-in\n")
    (root / "cmake" / "Modules" / "Packages").mkdir(parents=True)
    (root / "cmake" / "CMakeLists.txt").write_text(cmakelists)
    return root


def install(lammps_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(lammps_dir)], capture_output=True,
                          text=True, timeout=60)


def cmake_list(text: str, opener: str, nth: int = 0) -> list[str]:
    """Words of the nth CMake argument list opened by ``opener`` (e.g. 'set(STANDARD_PACKAGES')."""
    bodies = re.findall(re.escape(opener) + r"\b([^)]*)\)", text)
    return bodies[nth].split()


def test_install_puts_files_where_lammps_cmake_looks(tmp_path):
    lammps = fake_lammps(tmp_path / "lammps")
    proc = install(lammps)
    assert proc.returncode == 0, proc.stderr
    pkg = lammps / "src" / "ML-IONMD"
    expected = {p.name for p in SOURCES.iterdir() if p.suffix in (".cpp", ".h")} - {"plugin_main.cpp"}
    assert {"deepmd_stub_ops.cpp", "halo_exchange.cpp", "pair_mlip_torch.cpp"} <= expected
    assert {p.name for p in pkg.iterdir()} == expected | {"pair_mlip_torch_style.h"}
    for name in expected:
        assert (pkg / name).read_bytes() == (SOURCES / name).read_bytes(), name
    module = lammps / "cmake" / "Modules" / "Packages" / "ML-IONMD.cmake"
    assert module.read_text() == (STATIC / "ML-IONMD.cmake").read_text()
    shared = lammps / "cmake" / "Modules" / "Packages" / "IonmdTorchVersion.cmake"
    assert shared.read_text() == (ROOT / "cmake" / "IonmdTorchVersion.cmake").read_text()

    text = (lammps / "cmake" / "CMakeLists.txt").read_text()
    assert cmake_list(text, "set(STANDARD_PACKAGES") == ["ADIOS", "ML-PACE", "PLUGIN", "YAFF", "ML-IONMD"]
    assert cmake_list(text, "foreach(PKG_WITH_INCL")[-1] == "ML-IONMD"
    assert "ML-IONMD" not in cmake_list(text, "foreach(PKG_WITH_INCL", nth=1)
    assert "  YAFF\n  ML-IONMD)" in text    # one entry per line, as LAMMPS writes it
    assert "PKG_ML-IONMD=on" in proc.stdout


def test_install_twice_registers_once(tmp_path):
    lammps = fake_lammps(tmp_path / "lammps")
    assert install(lammps).returncode == 0
    first = (lammps / "cmake" / "CMakeLists.txt").read_text()
    (lammps / "src" / "ML-IONMD" / "stale.cpp").write_text("// removed from ionmd since\n")
    proc = install(lammps)
    assert proc.returncode == 0, proc.stderr
    assert "already registered" in proc.stdout
    assert (lammps / "cmake" / "CMakeLists.txt").read_text() == first
    assert first.count("ML-IONMD") == 2
    assert not (lammps / "src" / "ML-IONMD" / "stale.cpp").exists()


def test_single_line_lists_of_older_lammps(tmp_path):
    old = ("set(STANDARD_PACKAGES ASPHERE BODY YAFF)\n"
           "foreach(PKG_WITH_INCL KSPACE PYTHON MLIAP)\n  include(Packages/${PKG_WITH_INCL})\nendforeach()\n")
    lammps = fake_lammps(tmp_path / "lammps", old)
    assert install(lammps).returncode == 0
    text = (lammps / "cmake" / "CMakeLists.txt").read_text()
    assert "set(STANDARD_PACKAGES ASPHERE BODY YAFF ML-IONMD)" in text
    assert "foreach(PKG_WITH_INCL KSPACE PYTHON MLIAP ML-IONMD)" in text


def test_style_header_is_found_and_registers_the_style(tmp_path):
    lammps = fake_lammps(tmp_path / "lammps")
    assert install(lammps).returncode == 0
    pkg = lammps / "src" / "ML-IONMD"
    # LAMMPS's RegisterStyles: pair_*.h files that mention PAIR_CLASS go into style_pair.h.
    styles = [p.name for p in sorted(pkg.glob("pair_*.h")) if "PAIR_CLASS" in p.read_text()]
    assert styles == ["pair_mlip_torch_style.h"]
    header = (pkg / "pair_mlip_torch_style.h").read_text()
    assert "PairStyle(mlip/torch,PairMLIPTorch);" in header
    assert "class PairMLIPTorch : public Pair" in (pkg / "pair_mlip_torch.h").read_text()
    cpp = shutil.which("cpp")
    if cpp is None:
        return
    # As force.cpp reads it: with PAIR_CLASS only the registration; without, the class.
    reg = subprocess.run([cpp, "-P", "-DPAIR_CLASS", "-DPairStyle(key,Class)=REGISTER(#key,Class)",
                          str(pkg / "pair_mlip_torch_style.h")], capture_output=True, text=True)
    assert reg.returncode == 0, reg.stderr
    assert reg.stdout.split() == ['REGISTER("mlip/torch",PairMLIPTorch);']
    decl = subprocess.run([cpp, "-P", "-M", "-MG", str(pkg / "pair_mlip_torch_style.h")],
                          capture_output=True, text=True)
    assert "pair_mlip_torch.h" in decl.stdout


def test_cmake_module_defines_every_macro_the_sources_use(tmp_path):
    code = ""
    for path in SOURCES.iterdir():
        if path.suffix in (".cpp", ".h") and path.name != "plugin_main.cpp":
            code += path.read_text()
    code = re.sub(r'"(?:\\.|[^"\\])*"', '""', code)    # environment variable names
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", code, flags=re.S)
    used = {m for m in re.findall(r"\bIONMD_[A-Z0-9_]+\b", code) if not m.endswith("_H")}
    module = (STATIC / "ML-IONMD.cmake").read_text()
    block = re.search(r"target_compile_definitions\(lammps PRIVATE(.*?)\)", module, re.S).group(1)
    defined = set(re.findall(r"^\s*(IONMD_[A-Z0-9_]+)", block, re.M))
    assert {"IONMD_LAMMPS_DATE", "IONMD_STATIC_PACKAGE"} <= used
    assert used <= defined, f"used by the sources, not defined by ML-IONMD.cmake: {used - defined}"
    assert "find_package(Torch REQUIRED)" in module


@pytest.mark.parametrize("layout", ["missing", "no_cmake", "src_dir", "no_package_list"])
def test_bad_path_names_it(tmp_path, layout):
    if layout == "missing":
        target = tmp_path / "no-such-lammps"
    elif layout == "no_cmake":
        target = tmp_path / "lammps"
        (target / "src").mkdir(parents=True)
    elif layout == "src_dir":    # the user passed <lammps>/src
        target = fake_lammps(tmp_path / "lammps") / "src"
    else:
        target = fake_lammps(tmp_path / "lammps", "project(lammps CXX)\n")
    proc = install(target)
    assert proc.returncode == 1
    assert str(target) in proc.stderr and "error" in proc.stderr
    assert "Traceback" not in proc.stderr
    if layout == "src_dir":
        assert f"did you mean {target.parent}" in proc.stderr
    if layout == "no_package_list":
        assert "STANDARD_PACKAGES" in proc.stderr
        assert not (target / "src" / "ML-IONMD").exists()    # nothing half-installed


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("IONMD_LAMMPS_SRC"),
                    reason="set IONMD_LAMMPS_SRC to a scratch LAMMPS source tree to build lmp with ML-IONMD")
def test_real_lammps_build(tmp_path, monkeypatch):
    """Install into $IONMD_LAMMPS_SRC (modified in place), build a serial lmp, compare with the plugin."""
    import torch
    from lammps_runner import lower_triangular, run_lammps

    lammps = Path(os.environ["IONMD_LAMMPS_SRC"])
    proc = install(lammps)
    assert proc.returncode == 0, proc.stderr
    build = Path(os.environ.get("IONMD_LAMMPS_BUILD", tmp_path / "build"))
    configure = ["cmake", "-S", str(lammps / "cmake"), "-B", str(build), "-D", "PKG_ML-IONMD=on",
                 "-D", "BUILD_MPI=no", "-D", "BUILD_OMP=no", "-D", "CMAKE_BUILD_TYPE=Release",
                 "-D", f"CMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    steps = [["nice", "-n", "19", "cmake", "--build", str(build), "-j2"]]
    if not (build / "CMakeCache.txt").is_file():    # else: an existing build, brought up to date
        steps.insert(0, configure)
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=4 * 3600)
        assert done.returncode == 0, " ".join(cmd) + "\n" + done.stdout[-3000:] + done.stderr[-3000:]

    atoms = lower_triangular(lif_small())
    model = DEEPMD_FIXTURES / "se_e2_a_tiny.pth"
    ref = run_lammps(atoms, f"pair_style mlip/torch {model}", ["Li", "F"], tmp_path / "plugin")
    monkeypatch.setenv("PATH", f"{build}{os.pathsep}{os.environ['PATH']}")    # run_lammps runs `lmp`
    got = run_lammps(atoms, f"pair_style mlip/torch {model}", ["Li", "F"], tmp_path / "static")
    assert "ML-IONMD" in subprocess.run([str(build / "lmp"), "-h"], capture_output=True,
                                        text=True).stdout
    assert abs(got.energy_eV - ref.energy_eV) < 1e-10 * len(atoms)
    assert np.abs(got.forces_eV_A - ref.forces_eV_A).max() < 1e-10
