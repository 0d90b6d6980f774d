"""Benchmark: tracer MSD and D of N_frames x N_ions, ionmd against kinisi and pymatgen-analysis-diffusion.

Every tool gets the same arrays (a 3-D Brownian walk of the mobile ions plus a
vibrating framework) in a fresh worker process, so peak memory (max RSS) is
measured per tool; the figure reported is the peak minus the RSS after the
arrays were loaded. Times are wall-clock seconds, split into the MSD and the
D fit. kinisi and pymatgen-analysis-diffusion may live in a separate virtual
environment (they pull dependencies we do not want in the main one): pass its
interpreter with ``--other-python``. A tool that cannot be imported is
reported as such; ionmd's own figures are always reported.

Usage::

    python benchmarks/analysis_speed.py --frames 10000 --ions 1000 \
        --other-python /work/venvs/analysis-bench/bin/python

``--dump`` instead times reading an ``id type xu yu zu`` LAMMPS dump of
``--frames`` x ``--atoms`` (half of them selected): the line-by-line reader
(the old path) and the batched fast path of :mod:`ionmd.lammpsio.dump`, and
``load_trajectory`` keeping only the selected species, each in its own process
(atom lines per second and peak extra memory), in the same job::

    python benchmarks/analysis_speed.py --dump --frames 2000 --atoms 600
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

D_TRUE_A2_PS = 0.5
DT_PS = 0.1
N_FRAMEWORK = 100
L_A = 30.0


def make_data(path: Path, n_frames: int, n_ions: int, seed: int = 1) -> None:
    """Unwrapped positions (n_frames, n_ions + N_FRAMEWORK, 3), Å; the mobile ions come first."""
    rng = np.random.default_rng(seed)
    pos = np.empty((n_frames, n_ions + N_FRAMEWORK, 3))
    start = rng.uniform(0, L_A, (n_ions + N_FRAMEWORK, 3))
    steps = rng.normal(scale=np.sqrt(2 * D_TRUE_A2_PS * DT_PS), size=(n_frames, n_ions, 3))
    steps[0] = 0
    pos[:, :n_ions] = start[:n_ions] + np.cumsum(steps, axis=0)
    pos[:, n_ions:] = start[n_ions:] + rng.normal(0, 0.1, (n_frames, N_FRAMEWORK, 3))
    np.save(path, pos)


def _rss_mb() -> float:
    """Peak resident set size of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    return float("nan")


def worker_ionmd(pos: np.ndarray, n_ions: int) -> dict:
    from ionmd.analysis.diffusion import (
        choose_window,
        diffusion_from_msd,
        excess_kurtosis,
    )
    from ionmd.analysis.msd import tracer_msd

    t0 = time.perf_counter()
    com = pos[:, n_ions:].mean(axis=1)
    mobile = pos[:, :n_ions] - (com - com[0])[:, None, :]
    msd = tracer_msd(mobile, DT_PS)
    t1 = time.perf_counter()
    window = choose_window(msd)
    K = excess_kurtosis(mobile, window)
    res = diffusion_from_msd(msd, "Li", window, kurtosis_A4=K)
    t2 = time.perf_counter()
    return {"msd_s": t1 - t0, "D_s": t2 - t1, "D_cm2_s": res.D_cm2_s, "D_err_cm2_s": res.D_err_cm2_s,
            "note": f"all {msd.n_frames} lags by FFT; GLS over {res.fit_window_ps} ps"}


def worker_pymatgen(pos: np.ndarray, n_ions: int) -> dict:
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
    from pymatgen.core import Lattice, Structure

    n_frames, n_all, _ = pos.shape
    species = ["Li"] * n_ions + ["F"] * (n_all - n_ions)
    t0 = time.perf_counter()
    struct = Structure(Lattice.cubic(L_A), species, pos[0] % L_A, coords_are_cartesian=True)
    disp = np.ascontiguousarray((pos - pos[0]).transpose(1, 0, 2))
    # time_step in fs, step_skip frames; smoothed="max": all origins, up to 200 lags
    da = DiffusionAnalyzer(struct, disp, "Li", 1000.0, int(DT_PS * 1000), 1, smoothed="max")
    t1 = time.perf_counter()
    return {"msd_s": t1 - t0, "D_s": 0.0, "D_cm2_s": float(da.diffusivity),
            "D_err_cm2_s": float(da.diffusivity_std_dev),
            "note": "DiffusionAnalyzer(smoothed='max'): MSD and OLS fit happen together in the constructor"}


def worker_kinisi(pos: np.ndarray, n_ions: int, n_lags: int = 200) -> dict:
    import scipp as sc
    from kinisi.diffusion_analyzer import DiffusionAnalyzer
    from kinisi.displacement import calculate_msd
    from kinisi.parser import Parser

    n_frames, n_all, _ = pos.shape
    t0 = time.perf_counter()
    frac = np.mod(pos / L_A, 1.0)
    frac = np.concatenate([frac[:1], frac], axis=0)  # as kinisi's own parsers do
    latt = np.broadcast_to(np.eye(3) * L_A, (n_frames + 1, 3, 3)).copy()
    lags = np.unique(np.linspace(1, n_frames - 1, n_lags).astype(int))
    parser = Parser(
        coords=sc.array(dims=["time", "particle", "dimension"], values=frac, unit=sc.units.dimensionless),
        latt=sc.array(dims=["time", "dimension1", "dimension2"], values=latt, unit=sc.units.angstrom),
        time_step=sc.scalar(DT_PS, unit="ps"),
        step_skip=sc.scalar(1, unit=sc.units.dimensionless),
        dt=sc.array(dims=["time interval"], values=lags * DT_PS, unit="ps"),
        specie_indices=sc.array(dims=["particle"], values=np.arange(n_ions)),
        drift_indices=sc.array(dims=["particle"], values=np.arange(n_ions, n_all)),
    )
    ana = DiffusionAnalyzer(parser)
    ana._dg = calculate_msd(parser, progress=False)
    t1 = time.perf_counter()
    ana.diffusion(start_dt=sc.scalar(0.05 * (n_frames - 1) * DT_PS, unit="ps"), progress=False)
    t2 = time.perf_counter()
    D = ana.D
    D_cm2_s = sc.to_unit(D, "cm^2/s")
    vals = np.asarray(D_cm2_s.values)
    return {"msd_s": t1 - t0, "D_s": t2 - t1, "D_cm2_s": float(np.mean(vals)), "D_err_cm2_s": float(np.std(vals)),
            "note": f"kinisi {n_lags} lags (all intervals would be O(N^2)); Bayesian GLS (MCMC) fit"}


WORKERS = {"ionmd": worker_ionmd, "pymatgen": worker_pymatgen, "kinisi": worker_kinisi}


def run_worker(tool: str, data: str, n_ions: int) -> None:
    pos = np.load(data)
    base = _current_rss_mb()
    out = WORKERS[tool](pos, n_ions)
    out["peak_extra_MB"] = _rss_mb() - base
    out["input_MB"] = pos.nbytes / 2**20
    print("RESULT " + json.dumps(out))


def launch(tool: str, python: str, data: Path, n_ions: int, timeout_s: float) -> dict:
    cmd = [python, os.path.abspath(__file__), "--worker", tool, "--data", str(data), "--ions", str(n_ions)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout_s:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"failed: {err}"}


def write_dump(path: Path, n_frames: int, n_atoms: int, seed: int = 2) -> None:
    """An ``id type xu yu zu`` dump (types 1 and 2 alternating), written in blocks."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, L_A, (n_atoms, 3))
    ids = np.arange(1, n_atoms + 1)
    types = 1 + (ids % 2)
    with open(path, "w") as fh:
        for f in range(n_frames):
            x += rng.normal(0, 0.05, x.shape)
            fh.write(f"ITEM: TIMESTEP\n{f * 10}\nITEM: NUMBER OF ATOMS\n{n_atoms}\n"
                     f"ITEM: BOX BOUNDS pp pp pp\n0 {L_A}\n0 {L_A}\n0 {L_A}\nITEM: ATOMS id type xu yu zu\n")
            np.savetxt(fh, np.column_stack([ids, types, x]), fmt=["%d", "%d", "%.6f", "%.6f", "%.6f"])


def dump_worker(mode: str, path: str) -> None:
    """Read the dump one way in this process; print JSON with seconds, lines/s and peak extra MB."""
    from ionmd.analysis.trajectory import Selection, load_trajectory
    from ionmd.lammpsio.dump import iter_dump

    t_imp = time.perf_counter()
    if mode != "line-by-line":
        try:
            import pandas  # noqa: F401 - a one-time start-up cost, reported apart
        except ImportError:
            pass
    t_imp = time.perf_counter() - t_imp
    base = _current_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    n_lines = 0
    if mode == "trajectory":
        t = load_trajectory(path, Selection(types=[1]), dt_fs=1.0)
        n_lines = t.n_frames * 2 * t.n_ions
    else:
        for fr in iter_dump(path, fast=(mode == "fast")):
            n_lines += len(fr.ids)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"s": dt, "cpu_s": dc, "lines_per_s": n_lines / dt, "lines_per_cpu_s": n_lines / dc,
                      "import_s": t_imp, "peak_extra_MB": _rss_mb() - base}))


def dump_benchmark(n_frames: int, n_atoms: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lammpstrj"
        write_dump(path, n_frames, n_atoms)
        mb = path.stat().st_size / 1e6
        print(f"# {n_frames} frames x {n_atoms} atoms ('id type xu yu zu', {mb:.0f} MB); one process per reader")
        out = {}
        for mode in ("line-by-line", "fast", "trajectory"):
            proc = subprocess.run([sys.executable, __file__, "--dump-worker", mode, "--data", str(path)],
                                  capture_output=True, text=True, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
            out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = out["line-by-line"]["s"]
    for mode, r in out.items():
        print(f"{mode:13s} {r['s']:7.2f} s wall {r['cpu_s']:7.2f} s CPU  {r['lines_per_s'] / 1e6:5.2f} M atom "
              f"lines/s wall, {r['lines_per_cpu_s'] / 1e6:5.2f} per CPU s  {ref / r['s']:4.1f}x vs line-by-line  "
              f"(+{r['import_s']:.2f} s pandas import)  peak extra {r['peak_extra_MB']:.0f} MB")
    print("JSON " + json.dumps(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", action="store_true", help="benchmark dump reading instead (see the docstring)")
    p.add_argument("--atoms", type=int, default=600, help="atoms per frame of the --dump benchmark")
    p.add_argument("--dump-worker", help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--ions", type=int, default=1000)
    p.add_argument("--other-python", default=sys.executable,
                   help="interpreter that can import kinisi and pymatgen-analysis-diffusion")
    p.add_argument("--tools", default="ionmd,pymatgen,kinisi")
    p.add_argument("--timeout-s", type=float, default=1800.0)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dump_worker:
        dump_worker(args.dump_worker, args.data)
        return 0
    if args.dump:
        return dump_benchmark(args.frames, args.atoms)
    if args.worker:
        run_worker(args.worker, args.data, args.ions)
        return 0
    truth = D_TRUE_A2_PS * 1e-4
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pos.npy"
        make_data(data, args.frames, args.ions)
        print(f"# {args.frames} frames x {args.ions} mobile ions (+{N_FRAMEWORK} framework), "
              f"true D = {truth:.4g} cm^2/s")
        results = {}
        for tool in args.tools.split(","):
            python = sys.executable if tool == "ionmd" else args.other_python
            results[tool] = launch(tool, python, data, args.ions, args.timeout_s)
    ref = results.get("ionmd", {})
    ref_total = ref.get("msd_s", 0) + ref.get("D_s", 0) if "error" not in ref else None
    print(f"{'tool':10s} {'MSD (s)':>9s} {'D fit (s)':>9s} {'total/ionmd':>11s} {'peak extra MB':>13s} "
          f"{'D (cm^2/s)':>11s} {'D err':>9s}")
    for tool, r in results.items():
        if "error" in r:
            print(f"{tool:10s} not measured: {r['error']}")
            continue
        total = r["msd_s"] + r["D_s"]
        ratio = f"{total / ref_total:.1f}x" if ref_total else "n/a"
        print(f"{tool:10s} {r['msd_s']:9.2f} {r['D_s']:9.2f} {ratio:>11s} {r['peak_extra_MB']:13.0f} "
              f"{r['D_cm2_s']:11.4g} {r['D_err_cm2_s']:9.2g}   # {r['note']}")
    print("JSON " + json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
