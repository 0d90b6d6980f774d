"""The demo's budget: every size, length and count of ``ionmd demo`` in one place.

Three modes:

``quick`` (the default, ``make demo``)
    Must finish within 15 minutes on an idle 2-core machine, NEBs and analysis included.
    MD in the 65-atom cell (2x2x2 conventional LiF + one Li interstitial), 4 temperatures
    x 2 models x 2 seeds of 0.5 ps equilibration + 8 ps production (2 fs steps, Li dumped
    every 50 fs). Cost model (1 rank, 65 atoms, the other core busy): bundled MACE
    190 µs/atom/step (the demo's own runs) and DeePMD 300 (its 50 ps check: 313; the
    DeePMD bundled before 2026-12-01 20:13 UTC, with sel 40 instead of 52, took 209), i.e.
    12 and 20 ms per step, so the 16 runs take 8 x 4250 x (12 + 20) ms = 1090 core-seconds,
    about 9 minutes on 2 cores (measured 2026-12-01 with the previous DeePMD: MD 7.6 min,
    whole demo 8.5 min). 2 fs rather
    than 1 fs: a first try with 1 fs and 4 ps runs saw only 1-3 knock-off events per run,
    too few for the MSD fit to give a positive D in every run; the fastest LiF phonons
    have periods of about 50 fs, so 2 fs steps are still 25 per period. The NEBs use
    the 3x3x3 cell (217 atoms), where barriers are converged in cell size and comparable
    with the CHGNet reference, with 3 images (the symmetric protocol of docs/neb.md):
    about 13 s each (51 s for all four, measured 2026-12-01). Diffusion numbers of this mode are not
    converged in cell size and have wide error bars; the report says so.
``full`` (``--full``)
    The accurate mode: MD in the 217-atom cell (3x3x3), 4 temperatures x 3 seeds of
    1 ps + 16 ps (2 fs steps), NEBs with 5 images and a tighter force tolerance. About
    1.3 hours on 2 cores (measured 2026-12-01: 9317 core-seconds of MD, i.e. 78 min on 2
    cores; DeePMD 213 µs/atom/step in the 217-atom cell, so the prior above is pessimistic there),
    so that it fits one working session; twice the quick mode's sampled time per
    temperature and seed count, in a cell where the barriers are converged in size.
``tiny`` (``--tiny``, hidden; tests only)
    A handful of steps, to check the plumbing (tests/test_demo.py). Its numbers mean
    nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
MODELS_DIR = REPO_ROOT / "inputs" / "models"
CHGNET_REFERENCE = REPO_ROOT / "inputs" / "neb" / "chgnet_reference.json"

MODELS: dict[str, str] = {"mace": "lif_mace.pt", "deepmd": "lif_deepmd.pth"}
"""Model name in the sweep -> bundled TorchScript file in ``inputs/models``."""

MODEL_LABELS: dict[str, str] = {"mace": "MACE", "deepmd": "DeePMD se_e2_a"}

COST_PRIOR_US_PER_ATOM_STEP: dict[str, float] = {"mace": 190.0, "deepmd": 300.0}
"""Measured through ``pair_style mlip/torch`` on 1 rank, 65 atoms, two runs on 2 cores (ETA prior)."""

RUN_OVERHEAD_S = 6.0
"""LAMMPS start, plugin and model load per MD run (ETA prior)."""

NEB_CASES: tuple[str, ...] = ("knockoff", "direct")
CASE_LABELS: dict[str, str] = {"knockoff": "knock-off (interstitialcy)", "direct": "direct hop"}

LIF_A_A = 4.03
"""Lattice parameter (Å) of every cell in the demo: the bundled models' training cells."""

MODES: tuple[str, ...] = ("quick", "full", "tiny")


def interstitial_cell_atoms(n_cells: int) -> int:
    """Atoms of ``n_cells``^3 conventional rock-salt LiF cells plus one Li interstitial."""
    return 8 * n_cells**3 + 1


def cell_label(n_cells: int) -> str:
    """E.g. ``2x2x2 (65 atoms)``."""
    return f"{n_cells}x{n_cells}x{n_cells} ({interstitial_cell_atoms(n_cells)} atoms)"


@dataclass(frozen=True)
class DemoPlan:
    """What one mode of ``ionmd demo`` runs. Lengths in steps of ``dt_fs`` fs.

    Attributes
    ----------
    mode
        ``quick``, ``full`` or ``tiny``.
    md_cells
        Conventional cells per side of the MD cell (2: 65 atoms, 3: 217 atoms).
    temperatures_K, seeds
        The sweep's temperatures (K) and velocity seeds.
    dt_fs, n_equil, n_prod, dump_every, restart_every
        MD timestep (fs), equilibration and production steps, steps between Li dump
        frames and between restart files.
    thermostat
        ``csvr`` (stochastic velocity rescaling: ergodic also in a 65-atom cell).
    neb_cells, neb_images, neb_ftol_eV_A, neb_steps, neb_climb_steps
        NEB cell (conventional cells per side), images including end points
        (= MPI partitions), force tolerance (eV/Å) and step budgets of the plain and
        climbing stages (0: no climbing image).
    neb_relax
        Relax the end points before the NEB (off only in the tiny mode).
    neb_prior_s
        Expected wall time of one NEB on an idle machine (ETA prior).
    analysis_prior_s
        Expected wall time of the analysis and report (ETA prior).
    """

    mode: str
    md_cells: int
    temperatures_K: tuple[float, ...]
    seeds: tuple[int, ...]
    dt_fs: float
    n_equil: int
    n_prod: int
    dump_every: int
    restart_every: int
    thermostat: str
    neb_cells: int
    neb_images: int
    neb_ftol_eV_A: float
    neb_steps: int
    neb_climb_steps: int
    neb_relax: bool
    neb_prior_s: float
    analysis_prior_s: float
    models: dict[str, str] = field(default_factory=lambda: dict(MODELS))

    @property
    def md_atoms(self) -> int:
        """Atoms of the MD cell."""
        return interstitial_cell_atoms(self.md_cells)

    @property
    def neb_atoms(self) -> int:
        """Atoms of the NEB cell."""
        return interstitial_cell_atoms(self.neb_cells)

    @property
    def n_runs(self) -> int:
        """MD runs of the sweep."""
        return len(self.models) * len(self.temperatures_K) * len(self.seeds)

    @property
    def steps_per_run(self) -> int:
        """Equilibration plus production steps of one run."""
        return self.n_equil + self.n_prod

    def predicted_run_s(self, model: str) -> float:
        """Expected wall time (s) of one MD run of ``model`` on one idle core."""
        cost = COST_PRIOR_US_PER_ATOM_STEP.get(model, max(COST_PRIOR_US_PER_ATOM_STEP.values()))
        return RUN_OVERHEAD_S + 1e-6 * cost * self.md_atoms * self.steps_per_run

    def predicted_s(self, n_groups: int) -> dict[str, float]:
        """Expected wall time (s) of each stage with ``n_groups`` concurrent MD runs."""
        md = sum(self.predicted_run_s(m) for m in self.models) * len(self.temperatures_K) \
            * len(self.seeds) / max(n_groups, 1)
        neb = self.neb_prior_s * len(self.models) * len(NEB_CASES)
        return {"md": md, "neb": neb, "analysis": self.analysis_prior_s}

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["temperatures_K"] = list(self.temperatures_K)
        d["seeds"] = list(self.seeds)
        return d

    def identity(self) -> dict:
        """What a demo directory must match to be resumed (the ETA priors excluded)."""
        return {k: v for k, v in self.to_dict().items() if not k.endswith("_prior_s")}

    def sweep_toml(self, structure: Path, sweep_dir: Path) -> str:
        """The ``ionmd sweep`` definition of this plan (absolute paths)."""
        models = "\n".join(f'{name} = "{MODELS_DIR / f}"' for name, f in self.models.items())
        temps = ", ".join(f"{t:g}" for t in self.temperatures_K)
        return (
            f"# Written by `ionmd demo` ({self.mode} mode); run by\n"
            f"#   mpirun -np N ionmd sweep sweep.toml --resume --ranks-per-run 1\n"
            f'name = "demo_{self.mode}"\n'
            f'sweep_dir = "{sweep_dir}"\n'
            f"temperatures_K = [{temps}]\n"
            f"seeds = [{', '.join(str(s) for s in self.seeds)}]\n"
            f'structure = "{structure}"\n\n'
            f"[models]\n{models}\n\n"
            f"[md]\n"
            f"dt_fs = {self.dt_fs:g}\n"
            f"n_equil = {self.n_equil}\n"
            f"n_prod = {self.n_prod}\n"
            f'thermostat = "{self.thermostat}"\n'
            f'ensemble = "nvt"\n'
            f"dump_every = {self.dump_every}\n"
            f'species = ["Li"]\n'
            f"restart_every = {self.restart_every}\n"
            f"thermo_every = {min(100, self.dump_every * 4)}\n"
        )


PLANS: dict[str, DemoPlan] = {
    "quick": DemoPlan(
        mode="quick", md_cells=2, temperatures_K=(700.0, 800.0, 900.0, 1000.0), seeds=(1, 2),
        dt_fs=2.0, n_equil=250, n_prod=4000, dump_every=25, restart_every=500,
        thermostat="csvr", neb_cells=3, neb_images=3, neb_ftol_eV_A=0.02, neb_steps=1000,
        neb_climb_steps=500, neb_relax=True, neb_prior_s=15.0, analysis_prior_s=5.0,
    ),
    "full": DemoPlan(
        mode="full", md_cells=3, temperatures_K=(700.0, 800.0, 900.0, 1000.0), seeds=(1, 2, 3),
        dt_fs=2.0, n_equil=500, n_prod=8000, dump_every=25, restart_every=1000,
        thermostat="csvr", neb_cells=3, neb_images=5, neb_ftol_eV_A=0.01, neb_steps=2000,
        neb_climb_steps=2000, neb_relax=True, neb_prior_s=60.0, analysis_prior_s=60.0,
    ),
    "tiny": DemoPlan(
        mode="tiny", md_cells=2, temperatures_K=(800.0, 1000.0), seeds=(1,),
        dt_fs=1.0, n_equil=10, n_prod=100, dump_every=5, restart_every=50,
        thermostat="csvr", neb_cells=2, neb_images=3, neb_ftol_eV_A=0.05, neb_steps=10,
        neb_climb_steps=0, neb_relax=False, neb_prior_s=5.0, analysis_prior_s=5.0,
    ),
}


def plan_for(mode: str) -> DemoPlan:
    """Return the plan of ``mode`` (one of :data:`MODES`)."""
    return PLANS[mode]


def plan_file(out: Path) -> Path:
    """The file that records which plan a demo directory holds."""
    return out / "demo_plan.json"


def check_or_record_plan(plan: DemoPlan, out: Path) -> bool:
    """Record ``plan`` in ``out``; return True if ``out`` already held this plan (a resume).

    Raises
    ------
    InputError
        ``out`` holds a demo of another plan (mode or settings).
    """
    from ionmd.errors import InputError
    from ionmd.jsonfile import read_json

    path = plan_file(out)
    if path.is_file():
        old = read_json(path, "delete the demo directory or choose another --out")
        if {k: v for k, v in old.items() if not k.endswith("_prior_s")} != plan.identity():
            raise InputError(
                f"{path}: the demo directory holds a '{old.get('mode', '?')}' demo with other "
                f"settings than this '{plan.mode}' one; choose another --out to start afresh "
                "(or rerun with the same options to resume)")
        return True
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
    return False
