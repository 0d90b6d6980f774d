"""Evaluations the genetic search of ``ionmd order`` needs on exactly solvable lattice models.

For each model (nearest-neighbour pair energies, J = 0.1 eV, lattice spacing 2 Å; the
three-component vacancy model also has second neighbours, ionmd.order.testing.vacancy_l10) and
seed: the evaluations until the exact ground state is first reached, the evaluations
used before stopping, the stop reason, and the best energy per atom of random sampling
with the same number of evaluations. The table in docs/order.md comes from this script::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/order_lattice_models.py --seeds 5
"""

from __future__ import annotations

import argparse
import time

from ase import Atoms

from ionmd.order.cache import Candidate
from ionmd.order.search import SearchConfig, genetic_search, random_search
from ionmd.order.sublattice import Parent, ParentSite, build_problem
from ionmd.order.symmetry import CanonicalKeys
from ionmd.order.testing import PairLatticeCalculator, ising_ab, square_layer, vacancy_l10

J_EV = 0.1


def _problem(atoms: Atoms, spec: str):
    sites = [ParentSite(f, "Cu", {"Cu": 1.0}) for f in atoms.get_scaled_positions()]
    return build_problem(Parent(atoms.cell.array, sites), 1, [spec])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-evals", type=int, default=1000)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--only", default="", help="run only the models whose name contains this text")
    args = ap.parse_args()
    cubic = Atoms("Cu", cell=[2.0] * 3, pbc=True).repeat((4, 4, 2))
    cases = [
        ("square 6x6, Cu/Au antiferro", square_layer(6), "Cu=Cu:0.5,Au:0.5", ising_ab(), -0.2),
        ("cubic 4x4x2, Cu/Au antiferro", cubic, "Cu=Cu:0.5,Au:0.5", ising_ab(), -0.3),
        ("square 6x6, Cu/vacancy, Cu-Cu +J", square_layer(6), "Cu=Cu:0.5,X:0.5",
         PairLatticeCalculator({("Cu", "Cu"): J_EV}, 2.5), 0.0),
        ("cubic 4x2x2, Cu/Au/vacancy 1/4:1/4:1/2, L1_0", Atoms("Cu", cell=[2.0] * 3, pbc=True).repeat(
            (4, 2, 2)), "Cu=Cu:0.25,Au:0.25,X:0.5", vacancy_l10(), -0.02),
        ("cubic 4x4x2, Cu/Au/vacancy 1/4:1/4:1/2, L1_0", cubic, "Cu=Cu:0.25,Au:0.25,X:0.5",
         vacancy_l10(), -0.02),
    ]
    cases = [c for c in cases if args.only in c[0]]
    print("| model | seed | evals to ground state | evals used | stop | best (eV/atom) "
          "| random best, same budget (eV/atom) | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, atoms, spec, calc, ground in cases:
        problem = _problem(atoms, spec)
        keys = CanonicalKeys(problem)

        def energy(occ, key, problem=problem, calc=calc):
            a = problem.atoms(occ)
            a.calc = calc
            return Candidate(key, [], float(a.get_potential_energy()), len(a))

        for seed in range(args.seeds):
            t0 = time.time()
            cfg = SearchConfig(seed=seed, max_evals=args.max_evals, patience=args.patience)
            ga = genetic_search(problem, keys, energy, cfg)
            rnd = random_search(problem, keys, energy, ga.n_evaluations, seed)
            reach = ga.evaluations_to_reach(ground)
            print(f"| {name} | {seed} | {reach if reach else 'not reached'} | "
                  f"{ga.n_evaluations} | {ga.stop_reason} | {ga.best_eV_atom:.4f} | "
                  f"{rnd.best_eV_atom:.4f} | {time.time() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
