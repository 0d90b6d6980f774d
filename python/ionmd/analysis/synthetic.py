"""Synthetic trajectories with known answers, and a LAMMPS dump writer (for tests and benchmarks)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms


def brownian_walk(n_frames: int, n_ions: int, D_A2_ps: float, dt_ps: float,
                  rng: np.random.Generator, start_A: np.ndarray | None = None) -> np.ndarray:
    """3-D Brownian positions (n_frames, n_ions, 3), Å, with diffusion coefficient ``D_A2_ps``."""
    steps = rng.normal(scale=np.sqrt(2.0 * D_A2_ps * dt_ps), size=(n_frames, n_ions, 3))
    steps[0] = 0.0 if start_A is None else start_A
    return np.cumsum(steps, axis=0)


def lattice_walk(n_frames: int, n_ions: int, a_A: float, hops_per_frame: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Simple-cubic lattice random walk; each frame makes ``hops_per_frame`` nearest-neighbour hops.

    The exact diffusion coefficient is D = hops_per_frame a^2 / (6 dt).
    """
    steps = _cubic_steps(rng, (n_frames, hops_per_frame, n_ions), a_A).sum(axis=1)
    steps[0] = 0.0
    return np.cumsum(steps, axis=0)


def write_lammps_dump(path: str | Path, positions_A: np.ndarray, cell_A: np.ndarray,
                      types: np.ndarray, elements: list[str] | None = None, mode: str = "unwrapped",
                      timesteps: np.ndarray | None = None, origin_A: np.ndarray | None = None,
                      ids: np.ndarray | None = None) -> Path:
    """Write unwrapped positions as a LAMMPS ``dump custom`` text file (gzip if ``*.gz``).

    Parameters
    ----------
    positions_A : ndarray (n_frames, n_atoms, 3)
        Unwrapped positions.
    cell_A : ndarray (3, 3) or (n_frames, 3, 3)
        Cell rows a, b, c; a lower-triangular (LAMMPS) cell; triclinic when off-diagonal.
    mode : {"unwrapped", "image", "wrapped", "scaled", "scaled_image"}
        ``xu yu zu``; ``x y z ix iy iz``; ``x y z``; ``xs ys zs``; ``xs ys zs ix iy iz``.
    """
    path = Path(path)
    n_frames, n_atoms, _ = positions_A.shape
    cells = np.broadcast_to(np.asarray(cell_A, dtype=float), (n_frames, 3, 3))
    origin = np.zeros(3) if origin_A is None else np.asarray(origin_A, dtype=float)
    steps = np.arange(n_frames) * 10 if timesteps is None else timesteps
    ids = np.arange(1, n_atoms + 1) if ids is None else ids
    cols = {"unwrapped": "xu yu zu", "image": "x y z ix iy iz", "wrapped": "x y z",
            "scaled": "xs ys zs", "scaled_image": "xs ys zs ix iy iz"}[mode]
    head = "id type" + (" element" if elements is not None else "")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as fh:
        for f in range(n_frames):
            cell = cells[f]
            xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
            tric = abs(xy) + abs(xz) + abs(yz) > 0
            lo = origin
            hi = origin + np.diag(cell)
            fh.write(f"ITEM: TIMESTEP\n{int(steps[f])}\nITEM: NUMBER OF ATOMS\n{n_atoms}\n")
            if tric:
                xlob = lo[0] + min(0.0, xy, xz, xy + xz)
                xhib = hi[0] + max(0.0, xy, xz, xy + xz)
                ylob = lo[1] + min(0.0, yz)
                yhib = hi[1] + max(0.0, yz)
                fh.write(f"ITEM: BOX BOUNDS xy xz yz pp pp pp\n{xlob:.10g} {xhib:.10g} {xy:.10g}\n"
                         f"{ylob:.10g} {yhib:.10g} {xz:.10g}\n{lo[2]:.10g} {hi[2]:.10g} {yz:.10g}\n")
            else:
                fh.write("ITEM: BOX BOUNDS pp pp pp\n" + "".join(
                    f"{lo[k]:.10g} {hi[k]:.10g}\n" for k in range(3)))
            fh.write(f"ITEM: ATOMS {head} {cols}\n")
            frac = np.linalg.solve(cell.T, (positions_A[f] - origin).T).T
            img = np.floor(frac)
            wfrac = frac - img
            if mode == "unwrapped":
                xyz = positions_A[f]
            elif mode in ("image", "wrapped"):
                xyz = origin + wfrac @ cell
            else:
                xyz = wfrac
            rows = []
            for i in range(n_atoms):
                s = f"{ids[i]} {types[i]}" + (f" {elements[i]}" if elements is not None else "")
                s += f" {xyz[i, 0]:.8f} {xyz[i, 1]:.8f} {xyz[i, 2]:.8f}"
                if mode in ("image", "scaled_image"):
                    s += f" {int(img[i, 0])} {int(img[i, 1])} {int(img[i, 2])}"
                rows.append(s)
            fh.write("\n".join(rows) + "\n")
    return path


def write_data_file(path: str | Path, positions_A: np.ndarray, types: np.ndarray, cell_A: np.ndarray,
                    type_map: dict[int, str]) -> Path:
    """Write atoms given by type number as a LAMMPS data file with the ``type_map:`` header (contract 1).

    A thin adapter over the one data-file writer, :func:`ionmd.lammpsio.datafile.write_lammps_data`
    (positions are wrapped into the cell; masses are the elements' own).
    """
    from ase import Atoms

    from ionmd.lammpsio.datafile import write_lammps_data

    order = sorted(type_map)
    if order != list(range(1, len(order) + 1)):
        raise ValueError(f"type map {type_map} must number the types 1..n")
    atoms = Atoms([type_map[int(t)] for t in types], positions=positions_A, cell=cell_A, pbc=True)
    write_lammps_data(atoms, path, [type_map[k] for k in order], description="synthetic structure")
    return Path(path)


@dataclass(frozen=True)
class HopLattice:
    """A supercell whose ``mobile`` ions hop by the nearest-neighbour vectors of their sublattice.

    Attributes
    ----------
    atoms : Atoms
        The supercell (the reference structure of the synthetic runs).
    mobile : str
        The hopping species.
    hop_vectors_A : ndarray (k, 3)
        The nearest-neighbour vectors of the mobile sublattice, Å (the same at every site).
    """

    atoms: Atoms
    mobile: str
    hop_vectors_A: np.ndarray

    @classmethod
    def of(cls, structure: Atoms, mobile: str, repeat: tuple[int, int, int] = (2, 2, 2),
           shell_tol: float = 0.01) -> HopLattice:
        """The hop lattice of ``mobile`` in ``structure`` repeated ``repeat`` times.

        Raises
        ------
        ValueError
            ``structure`` has no ``mobile`` atom, the supercell has only one (no neighbour
            to hop to: use a larger ``repeat``), or its ``mobile`` sites do not all have
            the same neighbour vectors (not a Bravais sublattice: the walk would not be the
            plain random walk whose D is :meth:`D_A2_ps`).
        """
        atoms = structure.repeat(repeat)
        atoms.calc = None
        mob = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == mobile)
        if len(mob) == 0:
            raise ValueError(f"the structure ({atoms.get_chemical_formula()}) has no {mobile} atom")
        if len(mob) == 1:
            raise ValueError(f"the supercell {repeat} of {structure.get_chemical_formula()} has a single "
                             f"{mobile} atom: it has no {mobile} neighbour to hop to (no hop vectors, "
                             "D undefined); use a larger repeat")
        frac = atoms.get_scaled_positions()[mob]
        shells = []
        for i in range(len(mob)):
            d = frac - frac[i]
            d -= np.round(d)
            v = d @ atoms.cell.array
            r = np.linalg.norm(v, axis=1)
            r[i] = np.inf
            shells.append(v[r < r.min() * (1 + shell_tol)])
        ref = shells[0][np.lexsort(np.round(shells[0], 6).T)]
        for i, sh in enumerate(shells[1:], start=1):
            if len(sh) != len(ref) or not np.allclose(sh[np.lexsort(np.round(sh, 6).T)], ref, atol=1e-6):
                raise ValueError(f"{mobile} atom {mob[i]} has other neighbour vectors than atom {mob[0]}: "
                                 f"not a Bravais sublattice (or the supercell {repeat} is too small)")
        return cls(atoms, mobile, ref)

    @property
    def mobile_indices(self) -> np.ndarray:
        """Indices of the mobile atoms in :attr:`atoms`."""
        return np.flatnonzero(np.array(self.atoms.get_chemical_symbols()) == self.mobile)

    def D_A2_ps(self, hop_rate_per_ps: float) -> float:
        """The exact tracer D (Å^2/ps) of ions making ``hop_rate_per_ps`` random nearest-neighbour hops."""
        return float(hop_rate_per_ps * np.mean(np.sum(self.hop_vectors_A**2, axis=1)) / 6.0)

    def walk(self, n_frames: int, hop_prob: float, rng: np.random.Generator) -> np.ndarray:
        """Unwrapped mobile positions (n_frames, n_mobile, 3), Å: each frame each ion hops with ``hop_prob``."""
        start = self.atoms.positions[self.mobile_indices]
        hop = rng.random((n_frames, len(start))) < hop_prob
        hop[0] = False
        vec = self.hop_vectors_A[rng.integers(0, len(self.hop_vectors_A), hop.shape)] * hop[..., None]
        return start + np.cumsum(vec, axis=0)


def hopping_sweep(sweep_dir: str | Path, temps_K: tuple[float, ...], seeds: tuple[int, ...], Ea_eV: float,
                  nu_per_ps: float, rng: np.random.Generator, *, lattice: HopLattice, n_frames: int = 300,
                  hops_per_frame: float = 0.03, model: str = "toy", vibration_A: float = 0.1,
                  framework_vibration_A: float = 0.08) -> Path:
    """Write a sweep directory (contract 2) of ions hopping on ``lattice``.

    Each mobile ion makes nearest-neighbour hops at the Arrhenius rate
    Gamma = nu exp(-Ea / k_B T); the frame interval is chosen so that a hop happens
    with probability ``hops_per_frame`` per ion and frame. The exact results are
    D = ``lattice.D_A2_ps(Gamma)`` and a lattice-hop ("vacancy") rate Gamma x n_mobile,
    both with activation energy ``Ea_eV``. The reference structure is written to
    ``structure.data``; every atom vibrates about its site (Gaussian, per axis).
    """
    kb = 8.617333262e-5
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atoms = lattice.atoms
    symbols = atoms.get_chemical_symbols()
    species = list(dict.fromkeys(symbols))
    type_map = {k + 1: sp for k, sp in enumerate(species)}
    types = np.array([species.index(sp) + 1 for sp in symbols])
    write_data_file(sweep_dir / "structure.data", atoms.positions, types, atoms.cell.array, type_map)
    mob = lattice.mobile_indices
    others = np.setdiff1d(np.arange(len(atoms)), mob)
    runs = []
    every = 100
    for T in temps_K:
        gamma = nu_per_ps * np.exp(-Ea_eV / (kb * T))
        dt_ps = hops_per_frame / gamma
        for s in seeds:
            rdir = sweep_dir / "runs" / model / f"{T:g}K" / f"seed{s}"
            rdir.mkdir(parents=True, exist_ok=True)
            pos = np.broadcast_to(atoms.positions, (n_frames, len(atoms), 3)).copy()
            pos[:, mob] = lattice.walk(n_frames, hops_per_frame, rng) + rng.normal(0, vibration_A,
                                                                                 (n_frames, len(mob), 3))
            pos[:, others] += rng.normal(0, framework_vibration_A, (n_frames, len(others), 3))
            write_lammps_dump(rdir / "dump.lammpstrj", pos, atoms.cell.array, types, symbols,
                              timesteps=np.arange(n_frames) * every)
            rel = rdir.relative_to(sweep_dir)
            runs.append({"id": f"{model}/{T:g}K/seed{s}", "model": model, "T_K": float(T), "seed": s,
                         "dir": str(rel), "status": "done", "dump": str(rel / "dump.lammpstrj"),
                         "data_file": "structure.data", "dt_fs": dt_ps * 1e3 / every, "dump_every": every,
                         "species": [lattice.mobile], "type_map": {str(k): v for k, v in type_map.items()},
                         "error": None})
    (sweep_dir / "sweep.json").write_text(json.dumps({"name": sweep_dir.name, "runs": runs}, indent=1))
    return sweep_dir


def _cubic_steps(rng: np.random.Generator, shape: tuple[int, ...], a_A: float) -> np.ndarray:
    """Random simple-cubic nearest-neighbour step vectors of length ``a_A``, shape ``shape + (3,)``."""
    axis = rng.integers(0, 3, size=shape)
    sign = rng.choice([-1.0, 1.0], size=shape)
    return np.eye(3)[axis] * (sign * a_A)[..., None]


def hop_walk(n_frames: int, n_ions: int, hop_prob: float, a_A: float, rng: np.random.Generator,
             vibration_A: float = 0.0) -> np.ndarray:
    """Ions hopping on a simple-cubic lattice: each frame each ion hops with probability ``hop_prob``.

    Thermal vibration is an independent Gaussian displacement of ``vibration_A`` per axis
    about the site. The exact tracer diffusion coefficient is
    D = hop_prob a^2 / (6 dt) (Å^2 per frame interval ``dt``).
    """
    hop = rng.random((n_frames, n_ions)) < hop_prob
    hop[0] = False
    steps = _cubic_steps(rng, (n_frames, n_ions), a_A) * hop[..., None]
    pos = np.cumsum(steps, axis=0)
    if vibration_A > 0:
        pos = pos + rng.normal(0.0, vibration_A, pos.shape)
    return pos


def single_mover_walk(n_frames: int, n_ions: int, hop_prob: float, a_A: float, rng: np.random.Generator,
                      vibration_A: float = 0.0) -> np.ndarray:
    """One ion (an interstitial) hops with probability ``hop_prob`` per frame; the others only vibrate.

    The exact tracer D averaged over the ``n_ions`` ions is hop_prob a^2 / (6 dt n_ions).
    """
    pos = np.zeros((n_frames, n_ions, 3))
    pos[:, :1] = hop_walk(n_frames, 1, hop_prob, a_A, rng)
    pos += rng.integers(0, 6, (1, n_ions, 3)) * a_A
    if vibration_A > 0:
        pos = pos + rng.normal(0.0, vibration_A, pos.shape)
    return pos


COVERAGE_A_HOP = 2.0
COVERAGE_WALKS = (  # kind, hop probability per frame, ions, vibration (Å), frames
    ("gauss", None, 16, 0.0, 200),
    ("hop", 0.05, 16, 0.0, 400),
    ("hop", 0.05, 64, 0.3, 400),
    ("hop", 0.01, 32, 0.0, 800),
    ("hop", 0.01, 16, 0.3, 800),
    ("hop", 0.002, 64, 0.0, 1000),
    ("hop", 0.002, 32, 0.3, 1000),
    ("single", 0.05, 32, 0.3, 1000),
)
"""The walk kinds on which the calibration of the D intervals is tested (tests, benchmarks)."""


def coverage_walk(kind: str, hop_prob: float | None, n_ions: int, vibration_A: float, n_frames: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Positions (Å, frame interval 1 ps) and the exact D (Å^2/ps) of one walk of :data:`COVERAGE_WALKS`.

    ``gauss``: Gaussian steps, D = 0.05; ``hop``: :func:`hop_walk` with hop length
    :data:`COVERAGE_A_HOP`; ``single``: :func:`single_mover_walk` (one interstitial).
    """
    a = COVERAGE_A_HOP
    if kind == "gauss":
        return brownian_walk(n_frames, n_ions, 0.05, 1.0, rng), 0.05
    if kind == "hop":
        return hop_walk(n_frames, n_ions, hop_prob, a, rng, vibration_A), hop_prob * a**2 / 6
    if kind == "single":
        return single_mover_walk(n_frames, n_ions, hop_prob, a, rng, vibration_A), hop_prob * a**2 / 6 / n_ions
    raise ValueError(f"unknown walk kind '{kind}' (gauss, hop, single)")
