"""Issue 21's benchmark table: TorchScript against ``.pt2`` through pair_style mlip/torch.

For LiF cells with one Li interstitial (65, 513 and 4,097 atoms by default) on 1 and
2 MPI ranks, one thread per rank, this script times LAMMPS NVE MD with the bundled
MACE exported as TorchScript and as ``.pt2``, in float64 and float32, interleaved
in one job (``--repeats`` rounds, the fastest run of each kept), and prints the
Markdown table of ``benchmarks/README.md`` with the ratio ``.pt2 / TorchScript``
per row. The models and the MD runs are ``pt2_speed.py``'s (``export_all``,
``pair_speed.lammps_md``, a private copy of the plugin).

On 2 ranks the plain export runs the ghost-shell graph; ``--halo-pt2 DTYPE=PATH``
adds rows for the ``--halo`` export (TorchScript against that ``.pt2``) when a halo
package exists. ``--deepmd NAME=PATH`` (twice: e.g. ``uncompressed=...`` and
``compressed=...``) adds DeePMD rows of the same cells, and the ratio of the
second over the first.

Each row records the load average before it: on a shared machine the ratios of
one job are the figures to read, not the absolute times.

Usage::

    python benchmarks/pt2_table.py [--sizes 65,513,4097] [--ranks 1,2] [--dtypes float64,float32]
        [--repeats 2] [--pt2 float64=lif64.pt2 --pt2 float32=lif32.pt2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_speed import CHECKPOINT, lammps_md, lif_cell, steps_for  # noqa: E402
from pt2_speed import export_all, reuse_package, snapshot_plugin  # noqa: E402


def pairs(items: list[str], option: str) -> dict[str, Path]:
    """``["a=PATH", ...]`` as ``{"a": Path}``; a malformed item stops with its option named."""
    out = {}
    for item in items:
        key, _, path = item.partition("=")
        if not key or not path:
            raise SystemExit(f"{option} wants NAME=PATH, not {item!r}")
        out[key] = Path(path).resolve()
    return out


def time_configs(atoms, configs: dict[str, tuple[Path, int]], repeats: int, steps: int,
                 workdir: Path) -> dict[str, float]:
    """Best ms/step of each ``{key: (model, ranks)}``, the runs interleaved ``repeats`` times."""
    best: dict[str, float] = {}
    for _ in range(max(1, repeats)):
        for key, (model, ranks) in configs.items():
            res = lammps_md(atoms, model, ranks, steps, workdir / key)
            best[key] = min(best.get(key, float("inf")), 1e3 / res["steps_per_s"])
    return best


def measure(args) -> dict:
    """Run the whole table; returns ``{"rows": [...], "load_before": ..., "load_after": ...}``."""
    dtypes = args.dtypes.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="ionmd_pt2_table_"))
    snapshot_plugin(tmp)
    models = export_all(tmp, dtypes, pairs(args.pt2, "--pt2"))
    halo_pt2 = {d: reuse_package(p, d) for d, p in pairs(args.halo_pt2, "--halo-pt2").items()}
    if halo_pt2:
        from ionmd.models.export import export_model

        for dtype in halo_pt2:
            models[f"halo_torchscript_{dtype}"] = tmp / f"halo_{dtype}.pt"
            export_model(CHECKPOINT, models[f"halo_torchscript_{dtype}"], dtype=dtype, halo=True)
    deepmd = pairs(args.deepmd, "--deepmd")
    result: dict = {"load_before": list(os.getloadavg()), "cpu_count": os.cpu_count(), "rows": []}
    for n_target in (int(s) for s in args.sizes.split(",")):
        atoms = lif_cell(n_target)
        n = len(atoms)
        steps = steps_for(n, args.atom_steps)
        for ranks in (int(r) for r in args.ranks.split(",")):
            variants = [("plain", dtype, models[f"torchscript_{dtype}"], models[f"pt2_{dtype}"])
                        for dtype in dtypes]
            variants += [("halo", d, models[f"halo_torchscript_{d}"], p) for d, p in halo_pt2.items()]
            for kind, dtype, ts, pt2 in variants:
                load = os.getloadavg()[0]
                best = time_configs(atoms, {"torchscript": (ts, ranks), "pt2": (pt2, ranks)},
                                    args.repeats, steps, tmp / f"{n}_{ranks}_{kind}_{dtype}")
                row = {"model": f"MACE {kind}", "dtype": dtype, "atoms": n, "ranks": ranks,
                       "steps": steps, "load_avg_1min": load, "ms_per_step": best,
                       "ratio": best["pt2"] / best["torchscript"]}
                result["rows"].append(row)
                print(format_row(row), flush=True)
            if len(deepmd) >= 2:
                (name_a, path_a), (name_b, path_b) = list(deepmd.items())[:2]
                load = os.getloadavg()[0]
                best = time_configs(atoms, {name_a: (path_a, ranks), name_b: (path_b, ranks)},
                                    args.repeats, steps, tmp / f"{n}_{ranks}_deepmd")
                row = {"model": "DeePMD", "dtype": "model", "atoms": n, "ranks": ranks,
                       "steps": steps, "load_avg_1min": load, "ms_per_step": best,
                       "ratio": best[name_b] / best[name_a]}
                result["rows"].append(row)
                print(format_row(row), flush=True)
    result["load_after"] = list(os.getloadavg())
    return result


def format_row(row: dict) -> str:
    """One Markdown table row: model, dtype, atoms, ranks, the two ms/step, ratio, load."""
    a, b = row["ms_per_step"].values()  # first, second (``time_configs`` keeps the order)
    return (f"| {row['model']} | {row['dtype']} | {row['atoms']} | {row['ranks']} | {row['steps']} "
            f"| {a:.1f} | {b:.1f} | {row['ratio']:.2f} | {row['load_avg_1min']:.1f} |")


TABLE_HEADER = ("| model | dtype | atoms | ranks | steps | TorchScript (or first) ms/step "
                "| .pt2 (or second) ms/step | ratio | load avg |\n|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="65,513,4097", help="approximate atom counts")
    p.add_argument("--ranks", default="1,2", help="MPI rank counts, one thread each")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds (the best is kept)")
    p.add_argument("--atom-steps", type=float, default=10000,
                   help="atoms x steps per run (4 to 200 steps)")
    p.add_argument("--pt2", action="append", default=[], metavar="DTYPE=PATH",
                   help="reuse a .pt2 of the bundled model instead of compiling one")
    p.add_argument("--halo-pt2", action="append", default=[], metavar="DTYPE=PATH",
                   help="a halo .pt2 of the bundled model: adds halo rows")
    p.add_argument("--deepmd", action="append", default=[], metavar="NAME=PATH",
                   help="two DeePMD models (e.g. uncompressed=A.pth compressed=B.pth)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    print(TABLE_HEADER, flush=True)
    result = measure(args)
    print(f"load average before {result['load_before'][0]:.1f}, after "
          f"{result['load_after'][0]:.1f} on {result['cpu_count']} cores")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
