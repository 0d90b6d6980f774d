"""Progress display of ``ionmd study`` (and ``ionmd demo``, ``ionmd assess``) on stderr:
stage, items done / total, time left.

The time left is the sum over the stages still to come of their expected wall time.
Each stage starts from a prior (:func:`ionmd.study.md_stage.stage_priors_s`);
once a stage has done part of its work, its estimate becomes the elapsed time scaled by
work left / work done, and the ratio measured / prior also rescales the later stages
(a loaded machine slows everything alike).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


def format_hms(seconds: float) -> str:
    """``01:02:03`` for 3723 s (``--:--:--`` when unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "--:--:--"
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class DemoProgress:
    """Stage-by-stage progress with an estimate of the time left.

    Parameters
    ----------
    priors_s
        Expected wall time of each stage, in execution order (stage name -> s).
    stream
        Where the lines go (stderr by default).
    every_s
        Seconds between two lines when nothing else happened.
    label
        The command named at the start of each line (``demo``, ``study``).
    """

    priors_s: dict[str, float]
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every_s: float = 30.0
    label: str = "demo"
    t0: float = field(default_factory=time.time)
    stage: str = ""
    stage_t0: float = 0.0
    slowdown: float = 1.0
    _last: float = 0.0

    def start(self, stage: str, text: str = "") -> None:
        """Enter ``stage`` (a key of ``priors_s``)."""
        self.stage = stage
        self.stage_t0 = time.time()
        self.update(0.0, text, force=True)

    def scale_prior(self, share_left: float) -> None:
        """Scale the current stage's prior by ``share_left``, the part of its work still to
        do (a resumed stage starts with some of it done)."""
        if self.stage in self.priors_s:
            self.priors_s[self.stage] *= min(1.0, max(0.0, share_left))

    def stage_left_s(self, fraction_done: float) -> float:
        """Expected seconds left in the current stage, ``fraction_done`` in [0, 1]."""
        elapsed = time.time() - self.stage_t0
        prior = self.priors_s.get(self.stage, 0.0) * self.slowdown
        if fraction_done >= 1.0:
            return 0.0
        if fraction_done > 0.05 and elapsed > 5.0:
            return elapsed * (1.0 - fraction_done) / fraction_done
        return max(prior - elapsed, prior * (1.0 - fraction_done))

    def left_s(self, fraction_done: float) -> float:
        """Expected seconds left in the whole demo."""
        names = list(self.priors_s)
        later = names[names.index(self.stage) + 1:] if self.stage in names else []
        return self.stage_left_s(fraction_done) + sum(self.priors_s[s] for s in later) * self.slowdown

    def update(self, fraction_done: float, text: str, force: bool = False) -> None:
        """Print ``[demo HH:MM:SS] stage: text; about HH:MM:SS left`` (rate-limited)."""
        now = time.time()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        names = list(self.priors_s)
        k = names.index(self.stage) + 1 if self.stage in names else 0
        line = (f"[{self.label} {format_hms(now - self.t0)}] stage {k}/{len(names)} {self.stage}"
                f"{': ' + text if text else ''}; about {format_hms(self.left_s(fraction_done))} left")
        print(line, file=self.stream, flush=True)

    def finish(self, fraction_measured: float | None = None) -> float:
        """Close the current stage; return its wall time (s) and rescale later priors.

        ``fraction_measured`` (default 1) is the share of the stage's prior work that
        was really done (0 when everything was resumed from an earlier run).
        """
        wall = time.time() - self.stage_t0
        prior = self.priors_s.get(self.stage, 0.0)
        share = 1.0 if fraction_measured is None else fraction_measured
        if prior > 0 and share > 0.2 and wall > 5.0:
            self.slowdown = max(0.25, wall / (prior * share))
        return wall

    def message(self, text: str) -> None:
        """Print a free-form line (a failure, a skipped item) at once."""
        print(f"[{self.label} {format_hms(time.time() - self.t0)}] {text}", file=self.stream, flush=True)
