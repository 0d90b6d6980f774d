"""``ionmd order``: evolutionary search of orderings on partially occupied sublattices."""

from __future__ import annotations

import argparse

from ionmd.order.energy import RELAX_MODES
from ionmd.order.search import SearchConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``order`` sub-command."""
    d = SearchConfig()
    p = subparsers.add_parser(
        "order",
        help="genetic search of low-energy orderings of partially occupied sublattices",
        description="Search the orderings of partially occupied sublattices (CIF partial "
        "occupancies or --sublattice targets, vacancies as X) in a supercell with a genetic "
        "algorithm; write the top distinct orderings, the convergence history and the "
        "energy spread of random orderings. Rerunning into the same -o directory resumes.",
    )
    p.add_argument("structure", help="CIF with partial occupancies, or any ordered structure")
    p.add_argument("--sublattice", action="append", default=[], metavar="LABEL=SP:VAL,...",
                   help="composition targets of the sites labelled LABEL, fractions (0.75, "
                   "1/4) or site counts; X (or Vac) is a vacancy, e.g. Li=Li:0.75,X:0.25")
    p.add_argument("--supercell", default="1", help="repeats N or NxMxK (default 1)")
    p.add_argument("--energy", default="chgnet",
                   help="chgnet (default), emt, lj, lammps:<pair_style>;<pair_coeff>, "
                   "model:<file.pt> (TorchScript through pair_style mlip/torch) or "
                   "[python:]module:factory")
    p.add_argument("--relax", choices=RELAX_MODES, default="none",
                   help="relax each candidate: none, fixed-cell or cell (default none)")
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation force threshold, eV/Å")
    p.add_argument("--relax-steps", type=int, default=200, help="most optimiser steps")
    p.add_argument("--population", type=int, default=d.population)
    p.add_argument("--offspring", type=int, default=d.offspring, help="children per generation")
    p.add_argument("--max-evals", type=int, default=d.max_evals,
                   help="budget of distinct orderings evaluated")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="generations without improvement before stopping")
    p.add_argument("--tournament", type=int, default=d.tournament)
    p.add_argument("--p-crossover", type=float, default=d.p_crossover)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--top-k", type=int, default=5, help="distinct orderings written")
    p.add_argument("--random-budget", type=int, default=None,
                   help="random orderings for comparison (default: as many as the search "
                   "evaluated; 0: none)")
    p.add_argument("-o", "--output", required=True, help="output (and cache) directory")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ionmd.order.workflow import run_order

    config = SearchConfig(population=args.population, offspring=args.offspring,
                          max_evals=args.max_evals, patience=args.patience,
                          tournament=args.tournament, p_crossover=args.p_crossover,
                          seed=args.seed)
    res = run_order(args.structure, args.output, args.sublattice, args.supercell, args.energy,
                    args.relax, args.fmax, args.relax_steps, config, args.top_k,
                    args.random_budget, quiet=args.quiet)
    reason = res.search["stop_reason"]
    state = f"converged ({reason})" if res.converged else f"NOT converged ({reason})"
    print(f"best ordering: {res.best_eV_atom:.6f} eV/atom after "
          f"{res.search['n_evaluations']} evaluations, {state}")
    if res.random:
        print(f"random orderings (n={res.random['n']}): min {res.random['min']:.6f}, mean "
              f"{res.random['mean']:.6f} ± {res.random['std']:.6f} eV/atom; gap to random "
              f"min {res.gap_to_random_min_eV_atom:.6f} eV/atom")
    if res.flags:
        print(f"flags: {', '.join(res.flags)}")
    for row in res.top:
        print(f"  #{row['rank']} {row['formula']} {row['energy_per_atom_eV']:.6f} eV/atom "
              f"-> {args.output}/{row['cif']}")
    print(f"summary: {args.output}/summary.json")
    return 0
