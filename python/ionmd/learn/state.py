"""Persistent state of an active-learning run: ``learn_state.json`` and ``iter.NNN/``.

The state file is rewritten atomically (a temporary file, then ``os.replace``)
after every step. A step is ``pending``, ``running``, ``done`` or ``failed``
(with the error text). A resumed run skips ``done`` steps and redoes the others;
steps are themselves resumable where it matters (labelling keeps finished
frames, the sweep keeps finished runs, training keeps finished members).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ionmd.driver.sweepdir import now_utc, write_json_atomic
from ionmd.errors import InputError
from ionmd.learn import STATE_FILE

#: The steps of one iteration, in order.
STEPS = ("data", "train", "evaluate", "explore", "select", "label")


now = now_utc  # the current UTC time in ISO format


@dataclass
class StepRecord:
    """One step of an iteration: status, times (UTC ISO), wall time (s), attempts and error."""

    status: str = "pending"
    started_at: str | None = None
    finished_at: str | None = None
    wall_s: float = 0.0
    attempts: int = 0
    error: str | None = None


@dataclass
class IterationRecord:
    """One iteration: its directory, steps and statistics.

    ``stats`` holds the numbers of the report: ``n_train_frames``, ``n_frames``,
    ``accurate``/``candidate``/``failed`` counts and fractions, ``n_selected``,
    ``n_labelled``, held-out ``test_energy_rmse_meV_atom`` and
    ``test_force_rmse_meV_A`` (committee mean and per member).
    """

    index: int
    dir: str
    steps: dict[str, StepRecord] = field(default_factory=lambda: {s: StepRecord() for s in STEPS})
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every step is done (or skipped because the run stopped)."""
        return all(s.status in ("done", "skipped") for s in self.steps.values())

    @property
    def wall_s(self) -> float:
        """Total wall time of the steps (s)."""
        return sum(s.wall_s for s in self.steps.values())


@dataclass
class LearnState:
    """The whole run, as stored in ``learn_state.json``."""

    name: str
    config: str
    config_digest: str
    status: str = "running"  # running | converged | max_iterations | no_candidates
    stop_reason: str | None = None
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    iterations: list[IterationRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnState:
        """Rebuild the state from ``learn_state.json``'s dict."""
        iters = []
        for it in data.get("iterations", []):
            steps = {name: StepRecord(**rec) for name, rec in it.get("steps", {}).items()}
            for name in STEPS:
                steps.setdefault(name, StepRecord())
            iters.append(IterationRecord(index=it["index"], dir=it["dir"], steps=steps,
                                         stats=dict(it.get("stats", {}))))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "iterations"}
        return cls(iterations=iters, **known)

    def iteration(self, index: int) -> IterationRecord:
        """Return iteration ``index``, creating it (and its record) if needed."""
        while len(self.iterations) <= index:
            n = len(self.iterations)
            self.iterations.append(IterationRecord(index=n, dir=iter_dir_name(n)))
        return self.iterations[index]


def iter_dir_name(index: int) -> str:
    """Return ``iter.NNN`` for iteration ``index``."""
    return f"iter.{index:03d}"


def state_path(work_dir: Path | str) -> Path:
    """Return the state file of a learning directory."""
    return Path(work_dir) / STATE_FILE


def is_learning_dir(path: Path | str) -> bool:
    """Whether ``path`` is a directory holding a learning state file."""
    return state_path(path).is_file()


def load_state(work_dir: Path | str) -> LearnState:
    """Read ``learn_state.json`` of ``work_dir``.

    Raises
    ------
    InputError
        If the file is missing or not a learning state.
    """
    path = state_path(work_dir)
    if not path.is_file():
        raise InputError(f"{path}: no learning state (not an `ionmd learn` directory)")
    try:
        return LearnState.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: unreadable learning state ({exc})") from None


def save_state(work_dir: Path | str, state: LearnState) -> None:
    """Write ``state`` to ``work_dir/learn_state.json`` atomically."""
    state.updated_at = now()
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path(work_dir), state.to_dict())
