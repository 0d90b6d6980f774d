"""Genetic search of orderings, and random sampling with the same budget.

Genome: the species codes of the searched sites (:class:`~ionmd.order.sublattice.OrderProblem`).
Operators conserve the composition of every sublattice:

- *swap*: exchange the species of two sites of one sublattice that hold different species;
- *cut-and-splice*: a slab of the cell (fractional coordinate along a random axis in a
  random window of half the cell) comes from parent A, the rest from parent B; the
  sublattice counts are then repaired by re-assigning randomly chosen sites of parent B's
  part from species in excess to species in deficit.

Parents are chosen by tournament. Children whose canonical key was already seen in this
search are discarded (symmetry-equivalent duplicates); the population keeps the best
distinct orderings ((mu + lambda) replacement). The search stops when the best energy per
atom has not improved by more than ``tol_eV_atom`` for ``patience`` generations, when the
budget of evaluations is used, or when no new ordering can be produced. Every random draw
comes from one ``numpy`` generator seeded with ``seed``, and energies never feed the
generator except through selection, so a rerun with the same seed and cache replays
the same search and takes every energy from the cache.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TextIO

import numpy as np

from ionmd.errors import InputError
from ionmd.order.cache import Candidate, EvaluationCache
from ionmd.order.sublattice import OrderProblem
from ionmd.order.symmetry import CanonicalKeys


@dataclass
class SearchConfig:
    """Settings of the genetic search.

    Attributes
    ----------
    population
        Distinct orderings kept between generations.
    offspring
        New orderings evaluated per generation.
    max_evals
        Budget: most distinct orderings evaluated (cache hits included).
    patience
        Generations without improvement before stopping.
    tournament
        Tournament size of parent selection.
    p_crossover
        Probability that a child is made by cut-and-splice (else a copy of one parent).
    mean_swaps
        Mean number of swaps applied to a child (at least one when it is a copy).
    tol_eV_atom
        Improvement of the best energy per atom that resets the stagnation count.
    seed
        Random seed.
    """

    population: int = 30
    offspring: int = 30
    max_evals: int = 1000
    patience: int = 15
    tournament: int = 3
    p_crossover: float = 0.8
    mean_swaps: float = 1.0
    tol_eV_atom: float = 1e-6
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`InputError` for settings that cannot work."""
        if self.population < 2 or self.offspring < 1 or self.max_evals < self.population:
            raise InputError(f"search settings: need population >= 2, offspring >= 1 and "
                             f"max_evals >= population (got {self.population}, "
                             f"{self.offspring}, {self.max_evals})")
        if not 1 <= self.tournament <= self.population:
            raise InputError(f"--tournament {self.tournament}: must be in 1..population")
        if not 0.0 <= self.p_crossover <= 1.0:
            raise InputError(f"--p-crossover {self.p_crossover}: must be in [0, 1]")


@dataclass
class GenerationRecord:
    """One row of the convergence history (energies in eV/atom)."""

    generation: int
    n_evaluations: int
    n_computed: int
    best_eV_atom: float
    mean_eV_atom: float
    worst_eV_atom: float


@dataclass
class SearchOutcome:
    """What a search (genetic or random) evaluated.

    Attributes
    ----------
    evaluated
        Keys in order of evaluation (distinct for the genetic search).
    energies_eV_atom
        Energy per atom of each evaluation, same order.
    best_key
        Key of the lowest-energy ordering.
    n_computed
        Evaluations that called the calculator (the others came from the cache).
    stop_reason
        ``stagnation``, ``budget`` or ``exhausted`` (``budget`` for random sampling).
    history
        Per-generation records (genetic search only).
    wall_s
        Wall time of the search.
    """

    evaluated: list[str] = field(default_factory=list)
    energies_eV_atom: list[float] = field(default_factory=list)
    best_key: str = ""
    n_computed: int = 0
    stop_reason: str = ""
    history: list[GenerationRecord] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def n_evaluations(self) -> int:
        """Evaluations made (cache hits included)."""
        return len(self.evaluated)

    @property
    def best_eV_atom(self) -> float:
        """Lowest energy per atom found."""
        return float(min(self.energies_eV_atom)) if self.energies_eV_atom else float("nan")

    def evaluations_to_reach(self, target_eV_atom: float, tol: float = 1e-6) -> int | None:
        """1-based index of the first evaluation at or below ``target_eV_atom`` (or None)."""
        for i, e in enumerate(self.energies_eV_atom):
            if e <= target_eV_atom + tol:
                return i + 1
        return None

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-evaluation lists)."""
        return {
            "n_evaluations": self.n_evaluations,
            "n_computed": self.n_computed,
            "best_eV_atom": self.best_eV_atom,
            "best_key": self.best_key,
            "stop_reason": self.stop_reason,
            "wall_s": self.wall_s,
            "history": [asdict(h) for h in self.history],
        }


EnergyFn = Callable[[np.ndarray, str], Candidate]


class Operators:
    """Composition-conserving random operators on occupations of one problem."""

    def __init__(self, problem: OrderProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self.rng = rng
        self.blocks = [problem.block(k) for k in range(len(problem.sublattices))]
        self.active = [k for k, s in enumerate(problem.sublattices) if len(s.counts) > 1]
        sizes = np.array([len(problem.sublattices[k].sites) for k in self.active], float)
        self.weights = sizes / sizes.sum()
        self.frac = problem.frac[problem.searched]
        self.template = problem.reference_occupation()

    def random(self) -> np.ndarray:
        """A random occupation with the target composition."""
        occ = self.template.copy()
        for b in self.blocks:
            occ[b] = self.rng.permutation(occ[b])
        return occ

    def swap(self, occ: np.ndarray, n_swaps: int = 1) -> np.ndarray:
        """``occ`` with ``n_swaps`` exchanges of unlike species within a sublattice."""
        occ = occ.copy()
        for _ in range(n_swaps):
            k = self.active[self.rng.choice(len(self.active), p=self.weights)]
            b = self.blocks[k]
            part = occ[b]
            i = int(self.rng.integers(part.size))
            others = np.flatnonzero(part != part[i])
            j = int(others[self.rng.integers(others.size)])
            part[i], part[j] = part[j], part[i]
            occ[b] = part
        return occ

    def cut_and_splice(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """A child with a slab from ``a`` and the rest from ``b``, composition repaired."""
        axis = int(self.rng.integers(3))
        start = float(self.rng.random())
        from_a = ((self.frac[:, axis] - start) % 1.0) < 0.5
        child = np.where(from_a, a, b).astype(a.dtype)
        n_species = len(self.problem.species)
        for k, blk in enumerate(self.blocks):
            part = child[blk]
            mask_b = ~from_a[blk]
            target = np.zeros(n_species, int)
            for s, c in self.problem.sublattices[k].counts.items():
                target[self.problem.code(s)] = c
            excess = np.bincount(part, minlength=n_species) - target
            deficit = [s for s in range(n_species) for _ in range(max(0, -excess[s]))]
            self.rng.shuffle(deficit)
            for s in np.flatnonzero(excess > 0):
                cand = np.flatnonzero((part == s) & mask_b)
                if cand.size < excess[s]:  # not enough in B's part: take any
                    cand = np.flatnonzero(part == s)
                pick = self.rng.choice(cand, size=int(excess[s]), replace=False)
                for site in pick:
                    part[site] = deficit.pop()
            child[blk] = part
        return child

    def child(self, a: np.ndarray, b: np.ndarray, p_crossover: float,
              mean_swaps: float) -> np.ndarray:
        """Cut-and-splice with probability ``p_crossover``, then random swaps."""
        crossed = self.rng.random() < p_crossover
        occ = self.cut_and_splice(a, b) if crossed else a
        n = int(self.rng.poisson(max(mean_swaps - 1.0, 0.0))) + (0 if crossed else 1)
        return self.swap(occ, n) if n else occ


class Progress:
    """One line per generation on a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, label: str = "order") -> None:
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.t0 = time.time()

    def line(self, text: str) -> None:
        """Print ``text`` with the elapsed time."""
        if self.stream is not None:
            print(f"[{self.label} {time.time() - self.t0:7.1f} s] {text}", file=self.stream,
                  flush=True)


def _tournament(rng: np.random.Generator, energies: np.ndarray, size: int) -> int:
    idx = rng.choice(energies.size, size=size, replace=False)
    return int(idx[np.argmin(energies[idx])])


def genetic_search(problem: OrderProblem, keys: CanonicalKeys, energy: EnergyFn,
                   config: SearchConfig, cache: EvaluationCache | None = None,
                   progress: Progress | None = None) -> SearchOutcome:
    """Run the genetic search (see the module docstring).

    Parameters
    ----------
    energy
        ``energy(occupation, key) -> Candidate``; it consults/fills the cache itself.
    cache
        Used only to count the evaluations that were already cached.
    """
    config.check()
    t0 = time.time()
    rng = np.random.default_rng(config.seed)
    ops = Operators(problem, rng)
    out = SearchOutcome()
    seen: set[str] = set()
    pop: list[tuple[float, str, np.ndarray]] = []

    def evaluate(occ: np.ndarray, key: str) -> float:
        cached = cache is not None and key in cache
        cand = energy(occ, key)
        out.n_computed += 0 if cached else 1
        out.evaluated.append(key)
        out.energies_eV_atom.append(cand.energy_per_atom_eV)
        return cand.energy_per_atom_eV

    def fresh(make: Callable[[], np.ndarray], n: int) -> list[tuple[np.ndarray, str]]:
        made: list[tuple[np.ndarray, str]] = []
        for _ in range(50 * n):
            if len(made) >= n or len(seen) >= config.max_evals:
                break
            occ = make()
            key = keys.key(occ)
            if key in seen:
                continue
            seen.add(key)
            made.append((occ, key))
        return made

    for occ, key in fresh(ops.random, config.population):
        pop.append((evaluate(occ, key), key, occ))
    best = min(p[0] for p in pop)
    stagnant, generation = 0, 0
    out.stop_reason = "budget"

    def record() -> None:
        e = np.array([p[0] for p in pop])
        out.history.append(GenerationRecord(generation, out.n_evaluations, out.n_computed,
                                            float(e.min()), float(e.mean()), float(e.max())))
        if progress is not None:
            progress.line(f"gen {generation:3d}  evals {out.n_evaluations}/{config.max_evals} "
                          f"(computed {out.n_computed})  best {e.min():.6f} eV/atom  "
                          f"pop mean {e.mean():.6f}  stagnant {stagnant}/{config.patience}")

    record()
    while out.n_evaluations < config.max_evals:
        generation += 1
        energies = np.array([p[0] for p in pop])

        def make_child(pop=pop, energies=energies) -> np.ndarray:
            a = pop[_tournament(rng, energies, config.tournament)][2]
            b = pop[_tournament(rng, energies, config.tournament)][2]
            return ops.child(a, b, config.p_crossover, config.mean_swaps)

        n_new = min(config.offspring, config.max_evals - out.n_evaluations)
        children = fresh(make_child, n_new)
        if not children:
            out.stop_reason = "exhausted"
            break
        for occ, key in children:
            pop.append((evaluate(occ, key), key, occ))
        pop.sort(key=lambda p: (p[0], p[1]))
        pop = pop[: config.population]
        if pop[0][0] < best - config.tol_eV_atom:
            best, stagnant = pop[0][0], 0
        else:
            stagnant += 1
        record()
        if stagnant >= config.patience:
            out.stop_reason = "stagnation"
            break
    out.best_key = min(pop, key=lambda p: (p[0], p[1]))[1]
    out.wall_s = time.time() - t0
    return out


def random_search(problem: OrderProblem, keys: CanonicalKeys, energy: EnergyFn,
                  n_evals: int, seed: int, cache: EvaluationCache | None = None,
                  progress: Progress | None = None) -> SearchOutcome:
    """Evaluate ``n_evals`` independent random orderings of the target composition.

    Draws are independent (a repeated ordering is evaluated again, from the cache), so
    this is plain random sampling with the same budget as a search.
    """
    t0 = time.time()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    ops = Operators(problem, rng)
    out = SearchOutcome(stop_reason="budget")
    for i in range(n_evals):
        occ = ops.random()
        key = keys.key(occ)
        cached = cache is not None and key in cache
        cand = energy(occ, key)
        out.n_computed += 0 if cached else 1
        out.evaluated.append(key)
        out.energies_eV_atom.append(cand.energy_per_atom_eV)
        if progress is not None and ((i + 1) % 50 == 0 or i + 1 == n_evals):
            progress.line(f"random {i + 1}/{n_evals}  best {out.best_eV_atom:.6f} eV/atom")
    if out.evaluated:
        out.best_key = out.evaluated[int(np.argmin(out.energies_eV_atom))]
    out.wall_s = time.time() - t0
    return out
