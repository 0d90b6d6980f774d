"""The cache of evaluated candidates: one JSON line per ordering, keyed by canonical key.

The file is append-only and flushed after every line, so an interrupted search keeps
every energy it paid for; a truncated last line (killed mid-write) is ignored. The
cache belongs to one problem and one energy model: ``problem.json`` next to it holds
their fingerprint, and a cache for another problem is refused.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ionmd.errors import InputError


@dataclass
class Candidate:
    """One evaluated ordering.

    Attributes
    ----------
    key
        Canonical occupation key (:class:`ionmd.order.symmetry.CanonicalKeys`).
    occupation
        Species codes of the searched sites (``OrderProblem.species`` indices).
    energy_eV
        Total energy (after relaxation when relaxing).
    n_atoms
        Atoms in the structure (vacancies removed).
    positions_A, cell_A
        Relaxed positions and cell, when the candidate was relaxed.
    magmoms
        Magnetic moments per atom (μB) when the calculator gives them.
    """

    key: str
    occupation: list[int]
    energy_eV: float
    n_atoms: int
    positions_A: list[list[float]] | None = None
    cell_A: list[list[float]] | None = None
    magmoms: list[float] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def energy_per_atom_eV(self) -> float:
        """Energy per atom (eV/atom)."""
        return self.energy_eV / self.n_atoms


class EvaluationCache:
    """Every candidate evaluated for one problem, on disk and in memory."""

    def __init__(self, directory: str | Path, fingerprint: dict) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "cache.jsonl"
        meta = self.dir / "problem.json"
        if meta.is_file():
            old = json.loads(meta.read_text())
            if old != fingerprint:
                diff = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise InputError(
                    f"{self.dir}: holds the cache of a different search (differs in "
                    f"{', '.join(diff)}); use another -o directory or remove {meta}")
        else:
            meta.write_text(json.dumps(fingerprint, indent=2) + "\n")
        self.entries: dict[str, Candidate] = {}
        if self.path.is_file():
            text = self.path.read_text()
            good = []
            for line in text.splitlines():
                try:
                    cand = Candidate(**json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue  # a line cut short by an interruption
                self.entries[cand.key] = cand
                good.append(line)
            if text and (not text.endswith("\n") or len(good) != len(text.splitlines())):
                self.path.write_text("".join(g + "\n" for g in good))
        self.n_loaded = len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> Candidate | None:
        """The cached candidate with ``key``, or None."""
        return self.entries.get(key)

    def add(self, cand: Candidate) -> None:
        """Store ``cand`` (appended to the file and flushed at once)."""
        self.entries[cand.key] = cand
        rec = asdict(cand)
        rec["occupation"] = [int(x) for x in np.asarray(cand.occupation).tolist()]
        with self.path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
