"""``ionmd order`` as a library call: search, random baseline, and the output files.

Files written to the output directory:

``problem.json``, ``cache.jsonl``
    The fingerprint of the problem and every evaluated candidate (resume).
``history.csv``, ``convergence.png``
    Per-generation best / mean / worst energy per atom against evaluations, and the
    best-so-far curves of the search and of random sampling.
``top/rank01.extxyz``, ``top/rank01.cif``, ...
    The ``top_k`` lowest distinct orderings, energies per atom in ``info``.
``summary.json``
    :class:`OrderResult`: settings, stop reason, the energy spread of random orderings
    against the best found, and the top list.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from ase import Atoms

from ionmd.errors import InputError
from ionmd.order.cache import Candidate, EvaluationCache
from ionmd.order.energy import Evaluator
from ionmd.order.search import (
    Progress,
    SearchConfig,
    SearchOutcome,
    genetic_search,
    random_search,
)
from ionmd.order.sublattice import VACANCY, OrderProblem, build_problem, read_parent
from ionmd.order.symmetry import CanonicalKeys
from ionmd.results import Result

#: Machine-readable flags of an :class:`OrderResult`.
FLAG_DOCS = {
    "not-converged": "the search stopped on its budget, not on stagnation: the best "
    "ordering is only the best found so far",
    "space-exhausted": "no new distinct ordering came out of 50 tries per child: the "
    "(small) space is explored (nearly) completely",
    "not-better-than-random": "random sampling with the same budget found an ordering at or "
    "below the search's best (gap_to_random_min_eV_atom <= 0): the budget is too small",
    "no-random-baseline": "random sampling was skipped (--random-budget 0): no gap reported",
    "duplicates-by-key-only": "pymatgen is missing: the top list is distinct under the "
    "supercell's symmetry only, not checked by StructureMatcher",
}


@dataclass
class OrderResult(Result):
    """Summary of one ``ionmd order`` run (``summary.json``).

    Attributes
    ----------
    converged
        True when the search stopped on stagnation (``patience`` generations without
        improvement) or found no new ordering to make; False when it ran out of budget,
        in which case the best ordering is only the best found so far.
    random
        Energy spread (eV/atom) of random orderings of the same composition with the
        same budget: ``n``, ``min``, ``mean``, ``std``, ``max``; empty when skipped.
    gap_to_random_min_eV_atom, gap_to_random_mean_eV_atom
        Random minimum (mean) minus the best energy found; None without random sampling.
    duplicates_checked_by
        ``canonical key + StructureMatcher`` or ``canonical key`` (pymatgen missing).
    site_lattice
        The ideal lattice of the orderings, every site occupied (``top/sites.extxyz``,
        :meth:`ionmd.order.sublattice.OrderProblem.site_lattice`): the perfect structure
        for site analysis of MD started from a top ordering with vacancies.
    flags
        Machine-readable caveats (see :data:`FLAG_DOCS`).
    """

    structure: str
    energy: str
    relax: str
    problem: dict
    n_symmetry_operations: int
    seed: int
    search: dict
    converged: bool
    best_eV_atom: float
    random: dict = field(default_factory=dict)
    gap_to_random_min_eV_atom: float | None = None
    gap_to_random_mean_eV_atom: float | None = None
    top: list[dict] = field(default_factory=list)
    duplicates_checked_by: str = ""
    site_lattice: str = ""
    n_cached_at_start: int = 0
    n_computed: int = 0
    wall_s: float = 0.0
    flags: list[str] = field(default_factory=list)


def candidate_atoms(problem: OrderProblem, cand: Candidate) -> Atoms:
    """The structure of a cached candidate (relaxed when it was relaxed), with its energy."""
    atoms = problem.atoms(np.asarray(cand.occupation, dtype=np.int16))
    if cand.positions_A is not None:
        atoms.positions = np.asarray(cand.positions_A, float)
    if cand.cell_A is not None:
        atoms.set_cell(np.asarray(cand.cell_A, float))
    if cand.magmoms is not None:
        atoms.set_initial_magnetic_moments(np.asarray(cand.magmoms, float))
    atoms.info.update({"energy_eV": cand.energy_eV,
                       "energy_per_atom_eV": cand.energy_per_atom_eV, "ordering_key": cand.key})
    return atoms


def _matcher():
    try:
        from pymatgen.analysis.structure_matcher import StructureMatcher
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError:
        return None
    sm = StructureMatcher()
    return lambda a, b: sm.fit(AseAtomsAdaptor.get_structure(a), AseAtomsAdaptor.get_structure(b))


def distinct_top(problem: OrderProblem, cache: EvaluationCache, keys: list[str], k: int,
                 use_matcher: bool = True) -> tuple[list[Candidate], str]:
    """The ``k`` lowest-energy candidates among ``keys`` that are not equivalent.

    Distinct canonical keys are inequivalent under the supercell's symmetry; pymatgen's
    StructureMatcher (when installed) also merges orderings equivalent under a change of
    supercell, compared on the ideal (unrelaxed) sites.
    """
    fit = _matcher() if use_matcher else None
    ranked = sorted((cache.entries[x] for x in dict.fromkeys(keys)),
                    key=lambda c: (c.energy_per_atom_eV, c.key))
    chosen: list[Candidate] = []
    ideal: list[Atoms] = []
    for cand in ranked:
        if len(chosen) >= k:
            break
        atoms = problem.atoms(np.asarray(cand.occupation, dtype=np.int16))
        if fit is not None and any(fit(atoms, other) for other in ideal):
            continue
        chosen.append(cand)
        ideal.append(atoms)
    return chosen, "canonical key + StructureMatcher" if fit else "canonical key"


def write_history(outcome: SearchOutcome, path: Path) -> None:
    """Per-generation history as CSV (energies in eV/atom)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["generation", "n_evaluations", "n_computed", "best_eV_atom",
                    "mean_eV_atom", "worst_eV_atom"])
        for h in outcome.history:
            w.writerow([h.generation, h.n_evaluations, h.n_computed, f"{h.best_eV_atom:.8f}",
                        f"{h.mean_eV_atom:.8f}", f"{h.worst_eV_atom:.8f}"])


def plot_convergence(ga: SearchOutcome, rnd: SearchOutcome | None, path: Path) -> Path:
    """Best-so-far energy per atom against evaluations, search and random sampling."""
    from ionmd.analysis.plots import pyplot, save_png

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4.2))
    x = np.arange(1, ga.n_evaluations + 1)
    ax.plot(x, np.minimum.accumulate(ga.energies_eV_atom), color="C0", lw=1.5,
            label="genetic search: best so far")
    gen_x = [h.n_evaluations for h in ga.history]
    ax.plot(gen_x, [h.mean_eV_atom for h in ga.history], "o-", color="C0", ms=3, lw=0.8,
            alpha=0.6, label="genetic search: population mean")
    if rnd is not None and rnd.n_evaluations:
        xr = np.arange(1, rnd.n_evaluations + 1)
        ax.plot(xr, np.minimum.accumulate(rnd.energies_eV_atom), color="C3", lw=1.5,
                label="random orderings: best so far")
        ax.axhline(float(np.mean(rnd.energies_eV_atom)), color="C3", ls=":", lw=1,
                   label="random orderings: mean")
    ax.set_xlabel("evaluations (distinct orderings)")
    ax.set_ylabel("energy per atom (eV/atom)")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def run_order(structure: str | Path, output_dir: str | Path, sublattices: list[str] | tuple[str, ...] = (),
              supercell: str | int | tuple[int, int, int] = 1, energy: str = "chgnet",
              relax: str = "none", fmax_eV_A: float = 0.05, relax_steps: int = 200,
              config: SearchConfig | None = None, top_k: int = 5,
              random_budget: int | None = None, progress: TextIO | None = None,
              quiet: bool = False) -> OrderResult:
    """Search low-energy orderings of ``structure``'s partially occupied sublattices.

    Parameters
    ----------
    structure
        CIF with partial occupancies, or any ordered structure ASE reads.
    output_dir
        Output and cache directory; rerunning into it resumes (nothing is recomputed).
    sublattices
        ``LABEL=SP:VALUE,...`` composition targets (see :mod:`ionmd.order.sublattice`).
    supercell
        Repeats of the parent cell (``N`` or ``NxMxK``).
    energy
        Calculator specification (see :mod:`ionmd.order.energy`).
    random_budget
        Random orderings evaluated for comparison; None: as many as the search used;
        0: none.
    """
    t0 = time.time()
    config = config or SearchConfig()
    config.check()
    if top_k < 1:
        raise InputError(f"--top-k {top_k}: must be at least 1")
    problem = build_problem(read_parent(structure), supercell, sublattices)
    out = Path(output_dir)
    fingerprint = {"problem": problem.fingerprint(), "energy": energy, "relax": relax}
    if relax != "none":
        fingerprint.update({"fmax_eV_A": float(fmax_eV_A), "relax_steps": int(relax_steps)})
    cache = EvaluationCache(out, fingerprint)
    n_start = len(cache)
    elements = sorted({s for s in problem.fixed_symbols if s}
                      | {s for s in problem.species if s != VACANCY})
    evaluator = Evaluator(energy, elements, relax, fmax_eV_A, relax_steps)
    keys = CanonicalKeys(problem)
    prog = None if quiet else Progress(progress)
    if prog is not None:
        subs = "; ".join(f"{s.name}: {len(s.sites)} sites {dict(s.counts)}"
                         for s in problem.sublattices)
        prog.line(f"{structure} x {problem.repeats}: {subs}; {keys.n_operations} symmetry "
                  f"operations; {n_start} candidates cached")

    def energy_fn(occ: np.ndarray, key: str) -> Candidate:
        hit = cache.get(key)
        if hit is not None:
            return hit
        atoms = problem.atoms(occ)
        ev = evaluator(atoms)
        cand = Candidate(
            key, [int(x) for x in occ], float(ev.energy_eV), len(atoms),
            positions_A=None if ev.relaxed is None else ev.relaxed.positions.tolist(),
            cell_A=None if ev.relaxed is None or relax != "cell"
            else ev.relaxed.cell.array.tolist(),
            magmoms=None if ev.magmoms is None else [float(m) for m in ev.magmoms])
        cache.add(cand)
        return cand

    ga = genetic_search(problem, keys, energy_fn, config, cache, prog)
    n_random = ga.n_evaluations if random_budget is None else int(random_budget)
    rnd = random_search(problem, keys, energy_fn, n_random, config.seed, cache,
                        prog) if n_random > 0 else None
    top, checked = distinct_top(problem, cache, ga.evaluated + (rnd.evaluated if rnd else []),
                                top_k)
    topdir = out / "top"
    topdir.mkdir(exist_ok=True)
    from ase.io import write

    ga_keys = set(ga.evaluated)
    top_rows = []
    for rank, cand in enumerate(top, start=1):
        atoms = candidate_atoms(problem, cand)
        atoms.info["rank"] = rank
        stem = topdir / f"rank{rank:02d}"
        write(f"{stem}.extxyz", atoms, format="extxyz")
        write(f"{stem}.cif", atoms, format="cif")
        cif = Path(f"{stem}.cif")
        cif.write_text(f"# ionmd order rank {rank}: energy {cand.energy_eV:.8f} eV, "
                       f"{cand.energy_per_atom_eV:.8f} eV/atom ({energy}, relax {relax}), "
                       f"ordering key {cand.key}\n" + cif.read_text())
        top_rows.append({"rank": rank, "key": cand.key, "energy_eV": cand.energy_eV,
                         "energy_per_atom_eV": cand.energy_per_atom_eV,
                         "n_atoms": cand.n_atoms, "formula": atoms.get_chemical_formula(),
                         "found_by": "search" if cand.key in ga_keys else "random",
                         "extxyz": f"top/rank{rank:02d}.extxyz",
                         "cif": f"top/rank{rank:02d}.cif"})
    write(topdir / "sites.extxyz", problem.site_lattice(), format="extxyz")
    write_history(ga, out / "history.csv")
    plot_convergence(ga, rnd, out / "convergence.png")
    result = OrderResult(
        structure=str(structure), energy=energy, relax=relax, problem=problem.describe(),
        n_symmetry_operations=keys.n_operations, seed=config.seed, search=ga.to_dict(),
        converged=ga.stop_reason in ("stagnation", "exhausted"), best_eV_atom=ga.best_eV_atom,
        top=top_rows, duplicates_checked_by=checked, site_lattice="top/sites.extxyz",
        n_cached_at_start=n_start,
        n_computed=len(cache) - n_start)
    if rnd is not None:
        e = np.array(rnd.energies_eV_atom)
        result.random = {"n": int(e.size), "min": float(e.min()), "mean": float(e.mean()),
                         "std": float(e.std(ddof=1)) if e.size > 1 else 0.0,
                         "max": float(e.max())}
        result.gap_to_random_min_eV_atom = float(e.min() - ga.best_eV_atom)
        result.gap_to_random_mean_eV_atom = float(e.mean() - ga.best_eV_atom)
    if ga.stop_reason == "budget":
        result.flags.append("not-converged")
    elif ga.stop_reason == "exhausted":
        result.flags.append("space-exhausted")
    if rnd is None:
        result.flags.append("no-random-baseline")
    elif result.gap_to_random_min_eV_atom is not None and result.gap_to_random_min_eV_atom <= 0:
        result.flags.append("not-better-than-random")
    if checked == "canonical key":
        result.flags.append("duplicates-by-key-only")
    result.wall_s = time.time() - t0
    result.to_json(out / "summary.json")
    if prog is not None:
        prog.line(f"done: best {ga.best_eV_atom:.6f} eV/atom after {ga.n_evaluations} "
                  f"evaluations ({ga.stop_reason}); {result.n_computed} computed this run")
    return result
