"""Stage 2 of the demo: knock-off and direct-hop barriers of both models, via ``ionmd.neb``.

Each NEB runs in ``out/neb/<model>_<case>/`` through :func:`ionmd.neb.workflow.run_neb`
(LAMMPS, one image per MPI partition, ``pair_style mlip/torch``). Its result is kept as
``neb.json`` (and ``neb.png``); a rerun with the same ``--out`` reuses it. A failed NEB
leaves ``error.txt`` instead and is retried on the next run. The CHGNet reference
barriers are not recomputed: they are read from ``inputs/neb/chgnet_reference.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ionmd.errors import IonmdError
from ionmd.examples.lif.neb_cases import lif_case
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.result import NEBResult, plot_profile
from ionmd.neb.workflow import run_neb
from ionmd.study.plan import CHGNET_REFERENCE, LIF_A_A, MODELS_DIR, NEB_CASES, DemoPlan
from ionmd.study.progress import DemoProgress

CHGNET_SETTING = "a=4.03 A, fmax=0.02 eV/A"
"""Entry of ``chgnet_reference.json`` used as the reference: same a as the demo's cells."""


@dataclass
class NEBOutcome:
    """One NEB of the demo: the result, or why there is none."""

    model: str
    case: str
    result: NEBResult | None
    error: str | None
    reused: bool
    wall_s: float

    @property
    def barrier_eV(self) -> float | None:
        """Forward barrier (None unless converged)."""
        return self.result.barrier_forward_eV if self.result is not None else None


@dataclass
class ReferenceBarrier:
    """A CHGNet reference barrier from ``inputs/neb/chgnet_reference.json``."""

    case: str
    barrier_eV: float | None
    cell: str
    n_atoms: int
    setting: str


def neb_cell_text(plan: DemoPlan) -> str:
    """E.g. ``3x3x3 conventional, a = 4.03 Å, 217 atoms``."""
    n = plan.neb_cells
    return f"{n}x{n}x{n} conventional, a = {LIF_A_A} Å, {plan.neb_atoms} atoms"


def run_nebs(plan: DemoPlan, out: Path, progress: DemoProgress) -> list[NEBOutcome]:
    """Run (or reuse) every (model, case) NEB of the plan, in order."""
    outcomes: list[NEBOutcome] = []
    todo = [(m, c) for m in plan.models for c in NEB_CASES]
    settings = NEBSettings(ftol_eV_A=plan.neb_ftol_eV_A, n1_steps=plan.neb_steps,
                           n2_steps=plan.neb_climb_steps)
    for k, (model, case) in enumerate(todo):
        progress.update(k / len(todo), f"{k}/{len(todo)} NEBs done; now {model} {case} "
                                       f"({plan.neb_atoms} atoms, {plan.neb_images} images)",
                        force=True)
        outcomes.append(_one_neb(plan, out, model, case, settings))
        o = outcomes[-1]
        if o.error:
            progress.message(f"NEB {model} {case} failed: {o.error}")
    progress.update(1.0, f"{len(todo)}/{len(todo)} NEBs done", force=True)
    return outcomes


def _one_neb(plan: DemoPlan, out: Path, model: str, case: str, settings: NEBSettings
             ) -> NEBOutcome:
    workdir = out / "neb" / f"{model}_{case}"
    result_file = workdir / "neb.json"
    if result_file.is_file():
        try:
            return NEBOutcome(model, case, NEBResult.read_json(result_file), None, True, 0.0)
        except (IonmdError, json.JSONDecodeError, TypeError, KeyError):
            pass  # unreadable: run it again
    t0 = time.time()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "error.txt").unlink(missing_ok=True)
    try:
        initial, final = lif_case(case, plan.neb_cells, LIF_A_A)
        potential = Potential.from_model(MODELS_DIR / plan.models[model], ["Li", "F"])
        result = run_neb(initial, final, potential, workdir, n_images=plan.neb_images,
                         settings=settings, relax=plan.neb_relax, label=case,
                         cell=neb_cell_text(plan))
    except IonmdError as exc:
        (workdir / "error.txt").write_text(f"{exc}\n")
        return NEBOutcome(model, case, None, str(exc), False, time.time() - t0)
    plot_profile(result, workdir / "neb.png")
    tmp = workdir / "neb.json.tmp"
    result.write_json(tmp)
    tmp.replace(result_file)
    return NEBOutcome(model, case, result, None, False, time.time() - t0)


def chgnet_reference(path: Path = CHGNET_REFERENCE, setting: str = CHGNET_SETTING
                     ) -> dict[str, ReferenceBarrier]:
    """CHGNet's own barriers (case -> :class:`ReferenceBarrier`); empty if the file is absent."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    entries = data.get("barriers_eV", {}).get(setting, {})
    return {case: ReferenceBarrier(case, e.get("barrier_eV") if e.get("converged") else None,
                                   str(e.get("cell", "?")), int(e.get("n_atoms", 0)), setting)
            for case, e in entries.items()}
