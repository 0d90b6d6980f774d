#!/usr/bin/env bash
# The two model pairs of the compressed-DeePMD benchmark (benchmarks/README.md, "DeePMD:
# uncompressed vs compressed"), written to OUT (default /tmp/ionmd_deepmd_compressed):
#
#   lif_deepmd_compressed.pth       the bundled inputs/models/lif_deepmd.pth compressed with
#                                   deepmd-kit's defaults (step 0.01, extrapolate 5)
#   se_a_large.pth / se_a_large_compressed.pth
#                                   an se_e2_a model with deepmd-kit's usual embedding net
#                                   [25, 50, 100] (axis 16) and fitting net [120, 120, 120],
#                                   trained only 20 steps on 8 classical LiF frames: its
#                                   numbers are not physical, its cost is that of a
#                                   production-size model
#
#   IONMD_DP_TORCH_ENV=~/.cache/ionmd/envs/ionmd-torch2.11 benchmarks/deepmd_compressed/make_models.sh [OUT]
#
# Needs ionmd's main venv active (for the training frames) and the torch-2.11 env of
# benchmarks/envs/make_torch211_env.sh (for dp). About 3 minutes on 2 loaded cores.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$(mkdir -p "${1:-/tmp/ionmd_deepmd_compressed}" && cd "${1:-/tmp/ionmd_deepmd_compressed}" && pwd)"
DP_ENV="${IONMD_DP_TORCH_ENV:?set IONMD_DP_TORCH_ENV to the env of make_torch211_env.sh}"
cd "$OUT"

python - "$OUT/data" <<'PY'
import sys
from ase.calculators.singlepoint import SinglePointCalculator
from ionmd.examples.lif.sampling import SamplingPlan, sample_lif_frames
from ionmd.models.deepmd_data import write_deepmd_systems
plan = SamplingPlan(kinds={"interstitial": 0.7, "li_vacancy": 0.3}, frames_per_run=4,
                    stride=100, equil=200)
frames = sample_lif_frames(8, plan, seed=7, perturb=False)
for a in frames:
    a.calc = SinglePointCalculator(a, energy=a.info["classical_energy"],
                                   forces=a.arrays["classical_forces"])
write_deepmd_systems(frames, sys.argv[1], ["Li", "F"])
PY
SYSTEMS="$(cd data && ls -d sys* | sed 's|^|"data/|; s|$|"|' | paste -sd, -)"
cat > input.json <<JSON
{"model": {"type_map": ["Li", "F"],
  "descriptor": {"type": "se_e2_a", "sel": [52, 52], "rcut_smth": 0.5, "rcut": 5.0,
                 "neuron": [25, 50, 100], "axis_neuron": 16, "resnet_dt": false,
                 "precision": "float64", "seed": 1},
  "fitting_net": {"neuron": [120, 120, 120], "resnet_dt": true, "precision": "float64",
                  "seed": 1}},
 "learning_rate": {"type": "exp", "decay_steps": 50, "start_lr": 0.001, "stop_lr": 1e-4},
 "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1, "start_pref_f": 1000,
          "limit_pref_f": 1, "start_pref_v": 0, "limit_pref_v": 0},
 "training": {"training_data": {"systems": [$SYSTEMS], "batch_size": 1},
              "numb_steps": 20, "seed": 1, "disp_file": "lcurve.out", "disp_freq": 10,
              "save_freq": 20}}
JSON

eval "$(python -c "
import shlex
from ionmd.models.dpenv import env_vars
e = env_vars('$DP_ENV')
print(f'export PATH={shlex.quote(e[\"PATH\"])} LD_LIBRARY_PATH={shlex.quote(e[\"LD_LIBRARY_PATH\"])}')
")"
export OMP_NUM_THREADS=1 DP_INTRA_OP_PARALLELISM_THREADS=1 DP_INTER_OP_PARALLELISM_THREADS=1
dp --pt compress -i "$ROOT/inputs/models/lif_deepmd.pth" -o lif_deepmd_compressed.pth > compress_lif.log 2>&1
dp --pt train input.json > train.log 2>&1
dp --pt freeze -o se_a_large.pth > freeze.log 2>&1
dp --pt compress -i se_a_large.pth -o se_a_large_compressed.pth > compress_large.log 2>&1
ls -la "$OUT"/*.pth
