#!/usr/bin/env bash
# Regenerate the bundled LiF data and models (inputs/data, inputs/models) from scratch.
#
#   1. sample LiF frames (interstitial / Li-vacancy / Schottky cells) from classical
#      Buckingham+Ewald MD at 300-1100 K in LAMMPS, with random strains and rattles,
#      plus N_SHORT short-contact frames (one Li-Li or Li-F pair pushed to 1.0-1.8 A);
#   2. label them with CHGNet 0.3.0 (the stand-in for DFT) in NPROC resumable chunks;
#   3. fit a small fast MACE with ZBL repulsion on the first N_MACE labelled MD frames
#      plus the short-contact frames (300 training frames);
#   4. fit a small DeePMD se_e2_a on all labelled frames (in the DeePMD env);
#   5. export both for pair_style mlip/torch and write inputs/models/models.json.
#
# Every step is resumable: rerunning skips finished work (labels, trained members).
# Run from the repository root or from inputs/, with ionmd's venv active.
# Measured wall time: see inputs/README.md. Knobs (environment variables):
#   N_FRAMES (3000)  frames sampled;  N_LABEL (3000)  MD frames labelled (the first N_LABEL);
#   N_SHORT (150)    short-contact frames (made from the interstitial frames among the first 500);
#   N_MACE (420)     labelled MD frames given to MACE, with the short-contact frames
#                    (10% valid, 10% test, 300 train);
#   MACE_EPOCHS (60) DP_STEPS (60000) DP_STEPS2 (30000)  NPROC (2)  BUILD (inputs/build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
N_FRAMES=${N_FRAMES:-3000}
N_LABEL=${N_LABEL:-3000}
N_SHORT=${N_SHORT:-150}
N_MACE=${N_MACE:-420}
MACE_EPOCHS=${MACE_EPOCHS:-60}
DP_STEPS=${DP_STEPS:-60000}
DP_STEPS2=${DP_STEPS2:-30000}
NPROC=${NPROC:-2}
BUILD=${BUILD:-build}
mkdir -p "$BUILD" data models
export OMP_NUM_THREADS=1
START=$(date +%s)

# 1. Sampling (about 3 minutes for 3000 frames).
if [ ! -f "$BUILD/frames.extxyz" ]; then
  python - "$N_FRAMES" "$BUILD/frames.extxyz" <<'PY'
import sys
from ase.io import write
from ionmd.examples.lif.sampling import sample_lif_frames
write(sys.argv[2], sample_lif_frames(int(sys.argv[1]), seed=2026))
PY
fi

# 2. CHGNet labels of the first N_LABEL MD frames and the N_SHORT short-contact frames,
#    NPROC interleaved chunks in parallel (about 0.5-4 s per frame and process, depending
#    on the load), then merged back into order (MD frames, then short-contact frames).
python - "$BUILD" "$NPROC" "$N_LABEL" "$N_SHORT" <<'PY'
import sys
from pathlib import Path
from ase.io import read, write
from ionmd.examples.lif.sampling import SHORT_CONTACT_PAIRS_A
from ionmd.models.sampling import short_contact_frames
build, nproc, nlab, nshort = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
frames = read(build / "frames.extxyz", ":")
seeds = [a for a in frames[:500] if a.info["cell_kind"] == "interstitial"]
frames = frames[:nlab] + short_contact_frames(seeds, nshort, SHORT_CONTACT_PAIRS_A, seed=7,
                                              exclusive=False)
for k in range(nproc):
    if not (build / f"chunk{k}.extxyz").exists():
        write(build / f"chunk{k}.extxyz", frames[k::nproc])
PY
for k in $(seq 0 $((NPROC - 1))); do
  nice -n 10 ionmd label "$BUILD/chunk$k.extxyz" -o "$BUILD/label$k.extxyz" --calculator chgnet \
    --elements Li,F > "$BUILD/label$k.log" 2>&1 &
done
wait
python - "$BUILD" "$NPROC" "$N_MACE" <<'PY'
import shutil, sys
from pathlib import Path
from ase.io import read, write
build, nproc = Path(sys.argv[1]), int(sys.argv[2])
chunks = [read(build / f"label{k}.extxyz", ":") for k in range(nproc)]
merged = [c[i] for i in range(max(map(len, chunks))) for c in chunks if i < len(c)]
# `ionmd label` numbers frames within its chunk; number them in the sampling order again.
md = [a for a in merged if "short_contact" not in a.info]
short = [a for a in merged if "short_contact" in a.info]
for i, atoms in enumerate(md):
    atoms.info["frame_index"] = i
for atoms in short:
    atoms.info["frame_index"] = -1
write("data/lif_chgnet.extxyz", md + short)
shutil.copy(build / "label0.extxyz.e0.json", "data/lif_chgnet.extxyz.e0.json")
write(build / "mace_frames.extxyz", md[: int(sys.argv[3])] + short)
shutil.copy(build / "label0.extxyz.e0.json", build / "mace_frames.extxyz.e0.json")
PY

# 3. MACE: 16x0e scalar features, r_max 4 Å, 2 layers, correlation 2 (fast on a CPU), with
#    mace's ZBL pair repulsion and stage two for the last quarter of the epochs (both
#    defaults of `ionmd fit mace`); short-contact frames at loss weight 0.3.
if [ ! -f "$BUILD/mace/fit.json" ]; then
  nice -n 10 ionmd fit mace "$BUILD/mace_frames.extxyz" -o "$BUILD/mace" --size small \
    --epochs "$MACE_EPOCHS" --max-train 300 --dtype float64 \
    --config-type-weights short_contact=0.3 > "$BUILD/fit_mace.log" 2>&1
fi
# The trained checkpoint (mace_stagetwo.model after stage two), as fit.json names it.
MACE_CKPT=$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["members"][0]["model"])' \
  "$BUILD/mace/fit.json")
ionmd export "$MACE_CKPT" -o models/lif_mace.pt --dtype float32
ionmd export "$MACE_CKPT" -o models/lif_mace_halo.pt --dtype float32 --halo

# 4. DeePMD se_e2_a small (rcut 5 Å, float64) on all labelled frames (MD + short contacts);
#    sel is derived from the data (max neighbours per type x 1.15: [52, 52] for 3150 frames).
#    Two learning-rate cycles: DP_STEPS (60000) from scratch, 2e-3 -> 3.5e-6, then
#    DP_STEPS2 (30000) on from that checkpoint (--init-model), 5e-4 -> 3.5e-6; same split.
#    About 49 + 21 min on one core (0.04-0.05 s per step). Held-out force RMSE after the
#    first cycle 53.3 meV/Å, after the second 48.9 (inputs/README.md).
if [ ! -f "$BUILD/deepmd/fit.json" ]; then
  nice -n 10 ionmd fit deepmd data/lif_chgnet.extxyz -o "$BUILD/deepmd" --size small \
    --steps "$DP_STEPS" > "$BUILD/fit_deepmd.log" 2>&1
fi
if [ ! -f "$BUILD/deepmd_cont/fit.json" ]; then
  nice -n 10 ionmd fit deepmd data/lif_chgnet.extxyz -o "$BUILD/deepmd_cont" --size small \
    --steps "$DP_STEPS2" --init-model "$BUILD/deepmd" > "$BUILD/fit_deepmd_cont.log" 2>&1
fi
cp "$BUILD/deepmd_cont/member0/frozen.pth" models/lif_deepmd.pth
cp "$BUILD/deepmd_cont/fit.json" models/lif_deepmd.fit.json
cp "$BUILD/deepmd/fit.json" models/lif_deepmd.stage1.fit.json
cp "$BUILD/deepmd_cont/member0/input.json" models/lif_deepmd.stage2.input.json
cp "$BUILD/mace/fit.json" models/lif_mace.fit.json
cp "$MACE_CKPT" models/lif_mace.model
cp "$BUILD/deepmd/member0/input.json" models/lif_deepmd.input.json

# 5. Metadata and a compressed copy of the data.
python - <<'PY'
from ionmd.examples.lif.bundle import write_models_json
write_models_json("models", "data/lif_chgnet.extxyz")
PY
xz -9 -f data/lif_chgnet.extxyz
echo "make_models.sh: wall time $(( $(date +%s) - START )) s"
