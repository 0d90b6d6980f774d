"""GPU check of pair_style mlip/torch: exactness against the CPU, 2 ranks on one GPU, speed.

Driven by ``benchmarks/gpu_check.sh`` (which sets up the carried wheels and builds
the plugin against the torch of the machine), this script runs, each step in its
own process with its own timeout, and records every failure instead of stopping:

* ``export``: the bundled MACE (``inputs/models/lif_mace.model``) as TorchScript,
  float64 and float32, plain (mace's LAMMPS wrapper) and ``--halo``;
* ``pt2_<dtype>``: the same model as an AOTInductor ``.pt2`` package compiled for
  the check's device (traced on the CPU with ``export_pt2.trace_mace``, moved with
  ``torch.export.passes.move_to_device_pass``, compiled there);
* ``agree_*``: one LAMMPS evaluation (``run 0``) of a rattled LiF cell on the
  device against the same model on the CPU, in float64: total energy, forces,
  per-atom energies and the virial pressure must agree to 1e-10 (eV, eV/Å, bar x
  1e-6 for the pressure, i.e. eV/Å^3 in LAMMPS's units): the plain MACE, the
  DeePMD model (``inputs/models/lif_deepmd.pth``) and the float64 ``.pt2``
  (against the TorchScript model on the CPU);
* ``halo_2ranks``: the halo export on 2 MPI ranks sharing the device against 1 rank;
* ``speed_*``: µs/atom/step of NVE MD through the pair style, TorchScript and
  ``.pt2``, at each ``--sizes`` (default 4,097 and 32,769 atoms), 1 rank.

It writes ``summary.json`` and ``steps.log`` in ``--out`` and prints a short table. ``--cpu`` runs
the same steps with device ``cpu`` (so CPU against CPU must agree exactly: the
same binary on the same input), ``--quick`` small sizes and no ``.pt2`` compile
(unless ``--pt2 DTYPE=PATH`` gives a package made earlier), which is what
``tests/test_gpu_check.py`` runs.

Usage::

    python benchmarks/gpu_check.py --out DIR [--cpu] [--quick] [--sizes 4097,32768]
        [--pt2-dtypes float64,float32] [--budget-s 480] [--pt2 float64=PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKPOINT = ROOT / "inputs" / "models" / "lif_mace.model"
DEEPMD_MODEL = ROOT / "inputs" / "models" / "lif_deepmd.pth"
SPECIES = ["Li", "F"]
SCHEMA = "ionmd-gpu-check-1"
# float64 agreement demanded (eV, eV/Å, eV per atom, eV/Å^3 for the pressure).
TOLERANCE = 1e-10
# LAMMPS metal units: 1 eV/Å^3 = 1.6021765e6 bar.
BAR_PER_EV_A3 = 1.6021765e6


# ----------------------------------------------------------------------------- plan


def plan_steps(cfg: dict) -> list[tuple[str, float]]:
    """The steps of a check, in order, with their timeouts (s).

    The checks that need no ``.pt2`` come first, so that a slow AOTInductor
    compile spends only what is left of the budget.
    """
    steps = [("environment", 120), ("export", 300), ("agree_mace", 240), ("agree_deepmd", 240),
             ("halo_2ranks", 240)]
    for n in cfg["sizes"]:
        for dtype in cfg["speed_dtypes"]:
            steps.append((f"speed_torchscript_{dtype}_{n}", cfg["speed_timeout_s"]))
    for dtype in cfg["pt2_dtypes"]:
        steps.append((f"pt2_{dtype}", cfg["pt2_timeout_s"]))
        if dtype == "float64":
            steps.append(("agree_pt2", 240))
        steps += [(f"speed_pt2_{dtype}_{n}", cfg["speed_timeout_s"]) for n in cfg["sizes"]]
    return steps


def config_from_args(args) -> dict:
    """The check's settings (JSON-serialisable), from the command line."""
    device = "cpu" if args.cpu else args.device
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [65] if args.quick else [4097, 32768]
    given = {}
    for item in args.pt2:
        dtype, _, path = item.partition("=")
        if dtype not in ("float32", "float64") or not path:
            raise SystemExit(f"--pt2 wants DTYPE=PATH with DTYPE float32 or float64, not {item!r}")
        given[dtype] = str(Path(path).resolve())
    if args.pt2_dtypes is not None:
        pt2_dtypes = [d for d in args.pt2_dtypes.split(",") if d]
    else:
        pt2_dtypes = sorted(given) if args.quick else ["float64", "float32"]
    speed_dtypes = ["float64"] if args.quick else ["float64", "float32"]
    return {
        "device": device,
        "quick": bool(args.quick),
        "sizes": sizes,
        "agree_sizes": [65] if args.quick else [65, 513],
        "speed_dtypes": speed_dtypes,
        "pt2_dtypes": pt2_dtypes,
        "pt2_given": given,
        "steps_per_run": args.steps if args.steps else (3 if args.quick else 20),
        "budget_s": args.budget_s,
        "pt2_timeout_s": args.pt2_timeout_s,
        "speed_timeout_s": 90 if args.quick else 150,
        "tolerance": TOLERANCE,
    }


# ----------------------------------------------------------------------------- steps (child side)


def _models(work: Path) -> dict:
    path = work / "export.json"
    return json.loads(path.read_text())["models"] if path.is_file() else {}


def _pt2_path(work: Path, dtype: str) -> str | None:
    path = work / f"pt2_{dtype}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record.get("path") if record.get("status") == "ok" else None


def step_environment(cfg: dict, work: Path) -> dict:
    import torch

    from ionmd.plugin import plugin_path

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "hostname": platform.node(),
        "plugin": str(plugin_path()),
        "lmp": _which("lmp"),
        "mpirun": _which("mpirun"),
    }
    if env["cuda_available"]:
        env["gpu"] = torch.cuda.get_device_name(0)
    if cfg["device"] != "cpu" and not env["cuda_available"]:
        raise RuntimeError(f"device {cfg['device']} asked for, but torch {torch.__version__} sees "
                           "no CUDA GPU")
    if plugin_path() is None:
        raise RuntimeError("the ionmd plugin was not found (IONMD_PLUGIN or an installed ionmd)")
    return env


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def step_export(cfg: dict, work: Path) -> dict:
    from ionmd.models.export import export_model

    out = work / "models"
    models, seconds = {}, {}
    variants = [("torchscript_float64", "float64", False), ("halo_float64", "float64", True)]
    if "float32" in cfg["speed_dtypes"]:
        variants.append(("torchscript_float32", "float32", False))
    for name, dtype, halo in variants:
        t0 = time.perf_counter()
        models[name] = str(out / f"{name}.pt")
        export_model(CHECKPOINT, models[name], dtype=dtype, halo=halo)
        seconds[name] = round(time.perf_counter() - t0, 1)
    return {"models": models, "export_s": seconds}


def export_pt2_for_device(out: Path, dtype: str, device_type: str) -> dict:
    """Compile the bundled MACE as a ``.pt2`` for ``device_type`` ("cpu" or "cuda").

    ``ionmd export --format pt2`` compiles for the CPU; for another device the
    traced programs are moved there before AOTInductor compiles them, and the
    package records that device type (the plugin refuses any other).
    """
    import torch
    from torch.export.passes import move_to_device_pass

    from ionmd.models import export_pt2
    from ionmd.models.export import _load_mace, _mace_meta

    original = _load_mace(CHECKPOINT).to(torch.float64)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    meta = _mace_meta(CHECKPOINT, original, dtype)
    meta.update(format="pt2", torch_version=torch.__version__, device_type=device_type)
    graphs = [(export_pt2.MODEL_VIRIAL, True), (export_pt2.MODEL_FORCES, False)]
    programs, timings = {}, {}
    for name, virial in graphs:
        program, t = export_pt2.trace_mace(original, tdtype, virial)
        if device_type != "cpu":
            program = move_to_device_pass(program, device_type)
        programs[name] = program
        for key, seconds in t.items():
            timings[key] = round(timings.get(key, 0.0) + seconds, 1)
    metadata = export_pt2.package_metadata(meta, dtype)
    metadata["ionmd.device_type"] = device_type
    out.parent.mkdir(parents=True, exist_ok=True)
    timings["compile_s"] = round(export_pt2.compile_package(programs, out, metadata), 1)
    return {"path": str(out), "timings_s": timings}


def step_pt2(cfg: dict, work: Path, dtype: str) -> dict:
    given = cfg["pt2_given"].get(dtype)
    if given:
        return {"path": given, "reused": True}
    device_type = "cpu" if cfg["device"] == "cpu" else "cuda"
    return export_pt2_for_device(work / "models" / f"pt2_{dtype}.pt2", dtype, device_type)


def _cell(n_target: int):
    sys.path.insert(0, str(HERE))
    from pair_speed import lif_cell

    return lif_cell(n_target)


def _lower(atoms):
    sys.path.insert(0, str(ROOT / "tests"))
    from lammps_runner import lower_triangular

    return lower_triangular(atoms)


def _evaluate(atoms, model: str, device: str, workdir: Path, ranks: int = 1, words: str = ""):
    sys.path.insert(0, str(ROOT / "tests"))
    from lammps_runner import run_lammps

    return run_lammps(atoms, f"pair_style mlip/torch {model} device {device} {words}", SPECIES,
                      workdir, ranks=ranks, timeout_s=200)


def compare(a, b) -> dict:
    """Largest differences between two LAMMPS evaluations (``lammps_runner.LammpsResult``)."""
    import numpy as np

    d = {
        "max_abs_dE_eV": abs(float(a.energy_eV) - float(b.energy_eV)),
        "max_abs_dF_eV_A": float(np.abs(a.forces_eV_A - b.forces_eV_A).max()),
        "max_abs_d_atom_energy_eV": float(np.abs(a.atom_energy_eV - b.atom_energy_eV).max()),
        "max_abs_d_pressure_eV_A3": float(np.abs(a.pressure_bar - b.pressure_bar).max())
        / BAR_PER_EV_A3,
        "energy_eV": float(a.energy_eV),
    }
    d["pass"] = all(v <= TOLERANCE for k, v in d.items() if k.startswith("max_abs"))
    return d


def step_agree(cfg: dict, work: Path, which: str) -> dict:
    """``which`` on the device against the reference on the CPU, for each agreement size."""
    models = _models(work)
    if which == "mace":
        model, reference = models["torchscript_float64"], models["torchscript_float64"]
    elif which == "deepmd":
        model = reference = str(DEEPMD_MODEL)
    else:  # pt2 on the device against TorchScript on the CPU
        model = _pt2_path(work, "float64")
        if model is None:
            raise RuntimeError("no float64 .pt2 package (step pt2_float64 failed or was skipped)")
        reference = models["torchscript_float64"]
    rows = []
    for n in cfg["agree_sizes"]:
        atoms = _lower(_cell(n))
        base = work / f"agree_{which}_{n}"
        got = _evaluate(atoms, model, cfg["device"], base / "device")
        ref = _evaluate(atoms, reference, "cpu", base / "cpu")
        rows.append({"atoms": len(atoms), "model": Path(model).name, "reference": Path(reference).name,
                     **compare(got, ref)})
    return {"rows": rows, "pass": all(r["pass"] for r in rows)}


def step_halo(cfg: dict, work: Path) -> dict:
    import re

    model = _models(work)["halo_float64"]
    atoms = _lower(_cell(cfg["agree_sizes"][-1]))
    one = _evaluate(atoms, model, cfg["device"], work / "halo_1rank")
    two = _evaluate(atoms, model, cfg["device"], work / "halo_2ranks", ranks=2)
    mode = re.search(r"mlip/torch: (fold|halo|ghost-shell|local) ", two.log)
    row = {"atoms": len(atoms), "mode_2ranks": mode.group(1) if mode else "?", **compare(two, one)}
    row["pass"] = row["pass"] and row["mode_2ranks"] == "halo"
    return row


def step_speed(cfg: dict, work: Path, fmt: str, dtype: str, n_target: int) -> dict:
    sys.path.insert(0, str(HERE))
    from pair_speed import lammps_md

    if fmt == "pt2":
        model = _pt2_path(work, dtype)
        if model is None:
            raise RuntimeError(f"no {dtype} .pt2 package (step pt2_{dtype} failed or was skipped)")
    else:
        model = _models(work)[f"torchscript_{dtype}"]
    atoms = _cell(n_target)
    steps = cfg["steps_per_run"]
    res = lammps_md(atoms, Path(model), 1, steps, work / f"speed_{fmt}_{dtype}_{len(atoms)}",
                    f"device {cfg['device']}")
    us = 1e6 / (res["steps_per_s"] * len(atoms))
    return {"format": fmt, "dtype": dtype, "atoms": len(atoms), "ranks": 1, "steps": steps,
            "ms_per_step": 1e3 / res["steps_per_s"], "us_per_atom_step": us,
            "peak_MB_per_rank": res["peak_MB_per_rank"]}


def run_step(name: str, cfg: dict, work: Path) -> dict:
    """Run one step in this process; return its record."""
    if name == "environment":
        return step_environment(cfg, work)
    if name == "export":
        return step_export(cfg, work)
    if name.startswith("pt2_"):
        return step_pt2(cfg, work, name[4:])
    if name.startswith("agree_"):
        return step_agree(cfg, work, name[6:])
    if name == "halo_2ranks":
        return step_halo(cfg, work)
    if name.startswith("speed_"):
        _, fmt, dtype, n = name.split("_")
        return step_speed(cfg, work, fmt, dtype, int(n))
    raise ValueError(f"unknown step {name!r}")


# ----------------------------------------------------------------------------- orchestration


def spawn_step(name: str, timeout_s: float, cfg_file: Path, work: Path) -> dict:
    """Run ``name`` in a child process (own session, killed whole on timeout); return its record."""
    record_file = work / f"{name}.json"
    record_file.unlink(missing_ok=True)
    log = work / f"{name}.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", name,
                                 "--config", str(cfg_file), "--work", str(work)],
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"status": "timeout", "seconds": round(time.perf_counter() - t0, 1),
                    "error": f"killed after {timeout_s:.0f} s", "log": log.name}
    seconds = round(time.perf_counter() - t0, 1)
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        record["seconds"] = seconds
        record["log"] = log.name
        return record
    tail = log.read_text(errors="replace")[-1500:]
    return {"status": "failed", "seconds": seconds, "error": f"exit {proc.returncode}: {tail}",
            "log": log.name}


def child_main(name: str, cfg_file: Path, work: Path) -> int:
    cfg = json.loads(cfg_file.read_text())
    try:
        record = {"status": "ok", **run_step(name, cfg, work)}
    except Exception as exc:  # recorded, so that the check goes on
        import traceback

        traceback.print_exc()
        record = {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
    (work / f"{name}.json").write_text(json.dumps(record, indent=2))
    return 0


def read_side_record(out: Path, name: str) -> dict:
    """setup.json / build.json written by gpu_check.sh, or a 'not run' record."""
    path = out / f"{name}.json"
    if not path.is_file():
        return {"status": "not run"}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return {"status": "failed", "error": f"{path}: unreadable JSON ({exc})"}


def run_check(cfg: dict, out: Path, work: Path | None = None) -> dict:
    """Run every planned step within the budget; return the summary (also written to out).

    Models, LAMMPS runs and step logs go to ``work`` (default: a temporary folder,
    removed at the end), so that ``out`` holds a few files only: ``summary.json``
    and ``steps.log`` (the step logs, one after the other) beside what
    ``gpu_check.sh`` writes there.
    """
    import shutil
    import tempfile

    keep = work is not None
    work = Path(work) if keep else Path(tempfile.mkdtemp(prefix="ionmd_gpu_check_work_"))
    work.mkdir(parents=True, exist_ok=True)
    cfg_file = work / "config.json"
    cfg_file.write_text(json.dumps(cfg, indent=2))
    start = time.perf_counter()
    summary: dict = {
        "schema": SCHEMA,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": cfg,
        "setup": read_side_record(out, "setup"),
        "build": read_side_record(out, "build"),
        "steps": {},
    }
    for name, timeout_s in plan_steps(cfg):
        left = cfg["budget_s"] - (time.perf_counter() - start)
        if left < 10:
            summary["steps"][name] = {"status": "skipped", "error": "time budget spent"}
            continue
        print(f"[gpu_check] {name} (timeout {min(timeout_s, left):.0f} s)", flush=True)
        record = spawn_step(name, min(timeout_s, left), cfg_file, work)
        summary["steps"][name] = record
        print(f"[gpu_check] {name}: {record['status']} in {record.get('seconds', 0)} s"
              + (f" ({record['error'][:300]})" if record.get("error") else ""), flush=True)
    summarise(summary)
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    with open(out / "steps.log", "w") as fh:
        for name in summary["steps"]:
            log = work / f"{name}.log"
            if log.is_file():
                fh.write(f"===== {name} =====\n{log.read_text(errors='replace')[-20000:]}\n")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def summarise(summary: dict) -> None:
    """Gather the step records into the summary's agreement, halo, speed and failures."""
    steps = summary["steps"]
    summary["environment"] = steps.get("environment", {})
    summary["agreement"] = {k[6:]: v for k, v in steps.items() if k.startswith("agree_")}
    summary["halo"] = steps.get("halo_2ranks", {})
    summary["speed"] = [v for k, v in steps.items() if k.startswith("speed_") and v["status"] == "ok"]
    failures = [k for k, v in steps.items() if v["status"] != "ok"]
    failures += [f"{k} (outside {TOLERANCE:g})" for k, v in steps.items()
                 if v["status"] == "ok" and v.get("pass") is False]
    for side in ("setup", "build"):
        if summary[side].get("status") == "failed":
            failures.append(side)
    summary["failures"] = failures
    summary["ok"] = not failures


def format_table(summary: dict) -> str:
    """The short text report of a summary."""
    env = summary.get("environment", {})
    cfg = summary["config"]
    lines = [f"ionmd GPU check: device {cfg['device']}"
             + (f" ({env['gpu']})" if env.get("gpu") else "")
             + f", torch {env.get('torch', '?')}, {env.get('cpu_count', '?')} cores, "
             f"load average {env.get('load_average', [float('nan')])[0]:.1f}"]
    for side in ("setup", "build"):
        rec = summary[side]
        lines.append(f"{side}: {rec.get('status')}"
                     + (f" in {rec['seconds']} s" if "seconds" in rec else "")
                     + (f" ({rec['error'][:200]})" if rec.get("error") else ""))
    lines.append(f"agreement with the CPU, float64, tolerance {TOLERANCE:g}:")
    lines.append("  check | atoms | max|dE| eV | max|dF| eV/A | max|de_i| eV | max|dP| eV/A^3 | pass")
    for name, rec in summary["agreement"].items():
        if rec["status"] != "ok":
            lines.append(f"  {name} | {rec['status']}: {rec.get('error', '')[:160]}")
            continue
        for r in rec["rows"]:
            lines.append(f"  {name} | {r['atoms']} | {r['max_abs_dE_eV']:.2e} | {r['max_abs_dF_eV_A']:.2e}"
                         f" | {r['max_abs_d_atom_energy_eV']:.2e} | {r['max_abs_d_pressure_eV_A3']:.2e}"
                         f" | {'yes' if r['pass'] else 'NO'}")
    h = summary["halo"]
    if h.get("status") == "ok":
        lines.append(f"2 ranks ({h['mode_2ranks']} mode) vs 1 rank, {h['atoms']} atoms: max|dE| "
                     f"{h['max_abs_dE_eV']:.2e} eV, max|dF| {h['max_abs_dF_eV_A']:.2e} eV/A: "
                     f"{'pass' if h['pass'] else 'FAIL'}")
    else:
        lines.append(f"2 ranks vs 1 rank: {h.get('status')} {h.get('error', '')[:200]}")
    lines.append("speed, 1 rank, µs/atom/step (ms/step):")
    for r in sorted(summary["speed"], key=lambda r: (r["atoms"], r["dtype"], r["format"])):
        lines.append(f"  {r['atoms']} atoms | {r['format']} {r['dtype']} | {r['us_per_atom_step']:.3f}"
                     f" ({r['ms_per_step']:.2f})")
    lines.append("failures: " + (", ".join(summary["failures"]) or "none"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="summary.json goes here")
    p.add_argument("--device", default="cuda", help="the device checked against the CPU")
    p.add_argument("--cpu", action="store_true", help="device cpu (a test of the check itself)")
    p.add_argument("--quick", action="store_true", help="65 atoms, 3 steps, no .pt2 compile")
    p.add_argument("--sizes", help="atom counts of the speed runs (default 4097,32768)")
    p.add_argument("--steps", type=int, help="MD steps per speed run (default 20; quick 3)")
    p.add_argument("--pt2-dtypes", help="dtypes to compile .pt2 packages for (default "
                   "float64,float32; quick: those given by --pt2)")
    p.add_argument("--pt2", action="append", default=[], metavar="DTYPE=PATH",
                   help="use this .pt2 package instead of compiling one")
    p.add_argument("--pt2-timeout-s", type=float, default=240)
    p.add_argument("--budget-s", type=float, default=480,
                   help="no step starts after this many seconds")
    p.add_argument("--work", type=Path, help="keep models and runs here (default: a temporary "
                   "folder, removed at the end)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args.child, args.config, args.work)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    cfg = config_from_args(args)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = run_check(cfg, args.out.resolve(), args.work)
    print(format_table(summary))
    print(f"summary: {args.out / 'summary.json'}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
