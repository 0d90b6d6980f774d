"""CHGNet's own LiF migration barriers through ASE's NEB: the labeller reference.

The fitted MACE/DeePMD models are trained on CHGNet labels, so their barriers
should reproduce these. Run (slow: seconds per CHGNet call on 217 atoms)::

    nice -n 10 nohup python -m ionmd.examples.lif.chgnet_reference --cases knockoff direct \
        --out inputs/neb/chgnet_reference.json > inputs/neb/chgnet_reference.log 2>&1 &

Both built-in interstitial hops start from the same state (a Li interstitial at a
cube centre), so it is relaxed once and cached (``chgnet_initial_relaxed.extxyz``).
Both hops are symmetric: the final state is the image of the initial one under a
symmetry of rock salt (inversion through the pushed Li site for the collinear
knock-off, the (100) mirror between the two cube centres for the direct hop). So
the relaxed final state is built from the relaxed initial one by that operation,
with atoms re-matched by index. The saddle of a symmetric single-saddle path lies
on the symmetry element, and the climbing image finds it. The output file is
rewritten after every NEB step, so a run that is stopped early still shows its
partial state (``converged: false``, no barrier claimed).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.examples.lif.neb_cases import LIF_A_A, lif_case
from ionmd.neb.structures import check_endpoints, max_displacement_A

SYMMETRIC_CASES = ("knockoff", "direct")


def _calculator(threads: int):
    import torch

    torch.set_num_threads(threads)
    import ase.constraints
    import ase.filters

    # chgnet imports ExpCellFilter from its pre-3.23 location; ASE >= 3.29 only has it here.
    if not hasattr(ase.constraints, "ExpCellFilter"):
        ase.constraints.ExpCellFilter = ase.filters.ExpCellFilter
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device="cpu", check_cuda_mem=False)


def _mace_calculator(model_path: Path, threads: int):
    """ASE calculator of a MACE model file (``.model``), to check a fitted model the same way."""
    import torch

    torch.set_num_threads(threads)
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float32")


def symmetry_op(case: str, n_cells: int, a_A: float) -> Callable[[np.ndarray], np.ndarray]:
    """The rock-salt symmetry that maps the initial state of ``case`` onto its final state."""
    origin = np.full(3, (n_cells // 2) * a_A)  # the Li site used by lif_case
    if case == "knockoff":
        return lambda p: 2 * origin - p
    if case == "direct":
        plane_x = origin[0] + a_A / 2
        return lambda p: p * np.array([-1.0, 1.0, 1.0]) + np.array([2 * plane_x, 0.0, 0.0])
    raise ValueError(f"no symmetry operation for case {case!r}")


def _mic(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    frac = np.linalg.solve(cell.T, d.T).T
    frac -= np.round(frac)
    return frac @ cell


def symmetric_final(case: str, relaxed_initial: Atoms, n_cells: int, a_A: float) -> Atoms:
    """The relaxed final state, as the symmetry image of the relaxed initial state."""
    u_init, u_final = lif_case(case, n_cells, a_A)
    op = symmetry_op(case, n_cells, a_A)
    cell = u_init.cell.array
    images = op(u_init.positions)
    final = u_final.copy()
    sym = np.array(u_init.get_chemical_symbols())
    for j, pj in enumerate(u_final.positions):
        d = np.linalg.norm(_mic(images - pj, cell), axis=1)
        d[sym != u_final[j].symbol] = np.inf
        k = int(np.argmin(d))
        if d[k] > 1e-6:
            raise RuntimeError(f"{case}: symmetry image does not map atom {j} onto the final state")
        final.positions[j] = pj + _mic(op(relaxed_initial.positions[k]) - pj, cell)
    return final


def relaxed_initial_state(
    calc, n_cells: int, a_A: float, fmax_eV_A: float, cache: Path, start_from: Path | None = None
) -> tuple[Atoms, dict]:
    """Relax (or load from ``cache``) the shared interstitial initial state.

    ``start_from`` (an earlier, looser relaxation) is used as the starting geometry if given.
    """
    from ase.io import read, write
    from ase.optimize import BFGS

    start, _ = lif_case("direct", n_cells, a_A)
    t0 = time.time()
    if cache.is_file():
        atoms = read(cache)
        info = (
            json.loads(atoms.info.get("relax", "{}"))
            if isinstance(atoms.info.get("relax"), str)
            else {}
        )
    else:
        atoms = read(start_from) if start_from else start.copy()
        atoms.calc = calc
        opt = BFGS(atoms, logfile=str(cache.with_suffix(".opt.log")))
        opt.run(fmax=fmax_eV_A, steps=300)
        info = {
            "fmax_eV_A": fmax_eV_A,
            "steps": opt.nsteps,
            "wall_time_s": round(time.time() - t0, 1),
            "max_displacement_A": round(max_displacement_A(start, atoms), 4),
        }
        atoms.info["relax"] = json.dumps(info)
        atoms.calc = None
        write(cache, atoms)
    atoms.calc = None
    return atoms, info


def run_case(
    case: str,
    calc,
    initial: Atoms,
    record: dict,
    dump: Callable[[], None],
    n_cells: int,
    a_A: float,
    n_intermediate: int,
    fmax_eV_A: float,
    max_steps: int,
    rattle_A: float = 0.0,
) -> None:
    """Climbing-image NEB of one symmetric hop; fills ``record`` and calls ``dump`` every step."""
    from ase.mep import NEB
    from ase.optimize import BFGS

    t0 = time.time()
    final = symmetric_final(case, initial, n_cells, a_A)
    check_endpoints(initial, final)
    from ase.calculators.singlepoint import SinglePointCalculator

    first, last = initial.copy(), final.copy()
    energies = []
    for end in (first, last):  # evaluate once; the NEB then reads the stored values
        end.calc = calc
        e, f = float(end.get_potential_energy()), end.get_forces().copy()
        end.calc = SinglePointCalculator(end, energy=e, forces=f)
        energies.append(e)
    e0, e1 = energies
    record.update(
        {
            "E_initial_eV": round(e0, 5),
            "E_final_eV": round(e1, 5),
            "n_images_total": n_intermediate + 2,
            "fmax_eV_A": fmax_eV_A,
            "converged": False,
            "barrier_forward_eV": None,
            "barrier_backward_eV": None,
        }
    )
    images = [first] + [initial.copy() for _ in range(n_intermediate)] + [last]
    for k, im in enumerate(images[1:-1]):
        im.calc = calc if k == 0 else copy.deepcopy(calc)
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate(method="idpp", mic=True)
    if rattle_A > 0:  # break the mirror/inversion symmetry, so a lower off-axis saddle can be found
        for k, im in enumerate(images[1:-1]):
            im.rattle(stdev=rattle_A, seed=k + 1)
    record["rattle_A"] = rattle_A
    opt = BFGS(neb, logfile=None)

    def observe() -> None:
        e = np.array([e0, *[float(im.get_potential_energy()) for im in images[1:-1]], e1])
        f = neb.get_forces()
        record["energies_eV"] = [round(x, 5) for x in (e - e0)]
        record["neb_steps"] = opt.nsteps
        record["fmax_achieved_eV_A"] = round(float(np.sqrt((f**2).sum(axis=1)).max()), 4)
        record["wall_time_s"] = round(time.time() - t0, 1)
        print(
            f"[{case}] step {opt.nsteps}: E = {record['energies_eV']} fmax = {record['fmax_achieved_eV_A']}",
            flush=True,
        )
        dump()

    opt.attach(observe, interval=1)
    converged = bool(opt.run(fmax=fmax_eV_A, steps=max_steps))
    e = np.array([e0, *[float(im.get_potential_energy()) for im in images[1:-1]], e1])
    record["energies_eV"] = [round(x, 5) for x in (e - e0)]
    record["converged"] = converged
    record["wall_time_s"] = round(time.time() - t0, 1)
    if converged:
        record["barrier_forward_eV"] = round(float(e.max() - e[0]), 4)
        record["barrier_backward_eV"] = round(float(e.max() - e[-1]), 4)
    dump()


def merge_runs(paths: list[Path], out: Path) -> dict:
    """Collect run files into one table ``{"runs": [...], "barriers_eV": {label: {case: Ea}}}``."""
    runs, table = [], {}
    for p in paths:
        d = json.loads(p.read_text())
        label = f"a={d['a_A']:g} A, fmax={d['endpoint_relaxation']['fmax_eV_A']:g} eV/A"
        d["file"] = p.name
        runs.append(d)
        table[label] = {
            c: {
                "barrier_eV": r["barrier_forward_eV"],
                "converged": r["converged"],
                "cell": d["cell"],
                "n_atoms": d["n_atoms"],
                "images": r["n_images_total"],
                "rattle_A": r.get("rattle_A", 0.0),
                "wall_time_s": r.get("wall_time_s"),
            }
            for c, r in d["cases"].items()
        }
    merged = {
        "reference": "pretrained CHGNet through ASE CI-NEB, fixed cell (see docs/neb.md)",
        "chgnet_a0_A": CHGNET_A0_A,
        "barriers_eV": table,
        "runs": runs,
    }
    out.write_text(json.dumps(merged, indent=2) + "\n")
    return merged


CHGNET_A0_A = 4.09
"""CHGNet's equilibrium rock-salt LiF lattice parameter (Å): minimum of E(a) on 64 atoms."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(SYMMETRIC_CASES), choices=SYMMETRIC_CASES)
    p.add_argument("--out", type=Path, default=Path("inputs/neb/chgnet_reference.json"))
    p.add_argument("--n-cells", type=int, default=3)
    p.add_argument("--a", type=float, default=LIF_A_A)
    p.add_argument("--images", type=int, default=1, help="intermediate images")
    p.add_argument(
        "--fmax", type=float, default=0.05, help="NEB and end-point force tolerance (eV/Å)"
    )
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--rattle", type=float, default=0.0, help="random displacement (Å) of the images"
    )
    p.add_argument("--start-from", type=Path, help="start the end-point relaxation from this file")
    p.add_argument("--mace", type=Path, help="use this MACE .model file instead of CHGNet")
    p.add_argument(
        "--merge", nargs="+", type=Path, help="merge these run files into --out and stop"
    )
    a = p.parse_args(argv)
    if a.merge:
        merge_runs(a.merge, a.out)
        return 0
    t0 = time.time()
    calc = _mace_calculator(a.mace, a.threads) if a.mace else _calculator(a.threads)
    n = a.n_cells
    prefix = a.mace.stem if a.mace else "chgnet"
    cache = a.out.with_name(f"{prefix}_initial_relaxed_{n}x{n}x{n}_a{a.a:g}_fmax{a.fmax:g}.extxyz")
    initial, relax_info = relaxed_initial_state(calc, n, a.a, a.fmax, cache, a.start_from)
    out = {
        "reference": (
            f"MACE {a.mace.name} (MACECalculator)"
            if a.mace
            else "pretrained CHGNet (ASE calculator)"
        )
        + " through ASE CI-NEB",
        "cell": f"{a.n_cells}x{a.n_cells}x{a.n_cells} conventional",
        "n_atoms": len(initial),
        "a_A": a.a,
        "fixed_cell": True,
        "optimizer": "BFGS (end point and NEB)",
        "interpolation": "idpp",
        "endpoint_relaxation": relax_info,
        "final_state": "symmetry image of the relaxed initial state",
        "cases": {},
    }
    print(f"initial state ready ({relax_info}) after {time.time() - t0:.0f} s", flush=True)

    def dump() -> None:
        out["total_wall_time_s"] = round(time.time() - t0, 1)
        a.out.write_text(json.dumps(out, indent=2) + "\n")

    for case in a.cases:
        out["cases"][case] = {"case": case}
        run_case(
            case,
            calc,
            initial,
            out["cases"][case],
            dump,
            a.n_cells,
            a.a,
            a.images,
            a.fmax,
            a.max_steps,
            a.rattle,
        )
        print(f"[{case}] done: {out['cases'][case]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
