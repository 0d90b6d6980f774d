"""Load the trajectory of selected species from a dump (LAMMPS text or anything ASE reads).

Formats: LAMMPS ``dump custom`` text (optionally gzip); through ASE, extxyz/xyz,
ASE ``.traj``, VASP ``XDATCAR`` and ``vasprun.xml``; MDAnalysis universes (the
optional ``mdanalysis`` extra) passed from Python. The time between frames comes
from the timestep column x ``dt_fs`` (LAMMPS dumps, extxyz with a ``timestep``
entry) or, unambiguously for every format, from ``frame_interval_fs``.

Only the selected atoms' unwrapped positions are kept in memory, plus one
3-vector per frame: the centre of mass of the rest (the framework), used to
remove the drift of the frame of reference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ionmd.errors import InputError
from ionmd.lammpsio.dump import DumpFrame, iter_dump

ASE_SUFFIXES = (".xyz", ".extxyz", ".traj", ".xml")
ASE_NAMES = ("XDATCAR", "vasprun")
SUPPORTED_FORMATS = ("LAMMPS dump custom text (.lammpstrj, .dump, any name; optionally .gz), "
                     "extxyz/.xyz, ASE .traj, VASP XDATCAR and vasprun.xml (by file name), "
                     "and MDAnalysis universes from Python")


@dataclass
class Selection:
    """Which atoms to analyse.

    Attributes
    ----------
    species : list[str]
        Chemical symbols to keep (needs an ``element`` column or ``type_map``).
    types : list[int]
        LAMMPS types to keep (alternative to ``species``).
    type_map : dict[int, str]
        Type -> symbol, from ``--data FILE`` or ``--type-map 1=Li,2=F``.
    """

    species: list[str] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    type_map: dict[int, str] = field(default_factory=dict)

    def label(self) -> str:
        """Human-readable name of the selection, e.g. ``Li`` or ``type 1``."""
        if self.species:
            return ",".join(self.species)
        return "type " + ",".join(str(t) for t in self.types)


@dataclass
class Trajectory:
    """Unwrapped positions of the selected ions of one run.

    Attributes
    ----------
    positions_A : ndarray (n_frames, n_ions, 3)
        Unwrapped Cartesian positions, Å, drift-corrected when ``drift_corrected``.
    time_ps : ndarray (n_frames,)
        Time of each frame from the first, ps (uniformly spaced).
    volume_A3 : ndarray (n_frames,)
        Cell volume of each frame, Å^3.
    cell_A : ndarray (n_frames, 3, 3)
        Cell vectors of each frame, Å.
    origin_A : ndarray (n_frames, 3)
        Lower corner of the box of each frame, Å.
    symbols : list[str]
        Symbol (or ``type N``) of each selected ion.
    ids : ndarray (n_ions,)
        Atom ids of the selected ions.
    framework_com_A : ndarray (n_frames, 3)
        Unwrapped centre of mass of the other atoms (zeros when there are none).
    drift_corrected : bool
        Whether the framework drift was subtracted from ``positions_A``.
    source : str
        File the trajectory came from.
    """

    positions_A: np.ndarray
    time_ps: np.ndarray
    volume_A3: np.ndarray
    cell_A: np.ndarray
    origin_A: np.ndarray
    symbols: list[str]
    ids: np.ndarray
    framework_com_A: np.ndarray
    drift_corrected: bool
    source: str

    @property
    def n_frames(self) -> int:
        return self.positions_A.shape[0]

    @property
    def n_ions(self) -> int:
        return self.positions_A.shape[1]

    @property
    def dt_ps(self) -> float:
        """Time between frames, ps."""
        return float(self.time_ps[1] - self.time_ps[0]) if self.n_frames > 1 else 0.0


def _masses(symbols: Iterable[str]) -> np.ndarray:
    from ase.data import atomic_masses, atomic_numbers

    return np.array([atomic_masses[atomic_numbers[s]] if s in atomic_numbers else 1.0 for s in symbols])


def _ase_frames(path: Path) -> Iterator[DumpFrame]:
    """Adapt ASE-readable trajectories (extxyz, .traj) to :class:`DumpFrame`."""
    import ase.io

    try:
        for k, atoms in enumerate(ase.io.iread(str(path), index=":")):
            n = len(atoms)
            raw = atoms.info.get("timestep", atoms.info.get("step"))
            step = int(raw) if raw is not None else k
            yield DumpFrame(
                timestep=step,
                cell_A=np.array(atoms.cell[:]),
                origin_A=np.zeros(3),
                ids=np.arange(1, n + 1),
                types=np.zeros(n, dtype=int),
                elements=np.array(atoms.get_chemical_symbols()),
                positions_A=atoms.get_positions(),
                unwrapped=False,
                line=k + 1,
                has_timestep=raw is not None,
            )
    except InputError:
        raise
    except Exception as exc:  # ASE raises many types for malformed files
        raise InputError(f"cannot read trajectory '{path}' with ASE: {exc}") from exc


def _universe_frames(universe) -> Iterator[DumpFrame]:
    """Adapt an MDAnalysis ``Universe`` (optional dependency) to :class:`DumpFrame`."""
    atoms = universe.atoms
    n = len(atoms)
    try:
        elements = np.array([str(e) for e in atoms.elements])
    except (AttributeError, Exception):  # noqa: BLE001 - MDAnalysis raises NoDataError
        elements = None
    types = np.array([int(t) if str(t).isdigit() else 0 for t in atoms.types]) if hasattr(atoms, "types") \
        else np.zeros(n, dtype=int)
    ids = np.asarray(atoms.ids, dtype=int) if hasattr(atoms, "ids") else np.arange(1, n + 1)
    for k, ts in enumerate(universe.trajectory):
        dims = ts.dimensions
        if dims is None:
            raise InputError(f"MDAnalysis universe frame {k}: no cell dimensions; ionmd needs a periodic cell")
        from ase.geometry import cellpar_to_cell

        yield DumpFrame(
            timestep=int(ts.frame),
            cell_A=np.asarray(cellpar_to_cell(dims), dtype=float),
            origin_A=np.zeros(3),
            ids=ids,
            types=types,
            elements=elements,
            positions_A=np.array(atoms.positions, dtype=float),
            unwrapped=False,
            line=k + 1,
            has_timestep=False,
        )


def iter_frames(path) -> Iterator[DumpFrame]:
    """Frames of a LAMMPS dump, of anything ASE reads (extxyz, .traj, XDATCAR, vasprun.xml, by
    name), or of an MDAnalysis ``Universe`` object."""
    if hasattr(path, "trajectory") and hasattr(path, "atoms"):
        return _universe_frames(path)
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(ASE_SUFFIXES) or name.startswith(ASE_NAMES):
        if not path.is_file():
            raise InputError(f"trajectory file '{path}' does not exist")
        return _ase_frames(path)
    return iter_dump(path, formats_hint=SUPPORTED_FORMATS)


def check_time_options(dt_fs: float | None, frame_interval_fs: float | None, stride: int = 1) -> None:
    """Validate the time options (``--dt-fs``, ``--frame-interval-fs``, ``--stride``).

    Raises
    ------
    InputError
        Naming the option and value: a time that is not a positive finite number, both or
        neither time given, or a stride that is not a positive integer.
    """
    for name, v in (("--dt-fs", dt_fs), ("--frame-interval-fs", frame_interval_fs)):
        if v is not None and (not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0):
            raise InputError(f"{name} {v} is not a positive finite time in fs")
    if dt_fs is None and frame_interval_fs is None:
        raise InputError("give the time between frames: --frame-interval-fs (any format), or --dt-fs "
                         "(the MD time step; the dump's timestep column gives the frame interval)")
    if dt_fs is not None and frame_interval_fs is not None:
        raise InputError(f"give either --dt-fs {dt_fs:g} or --frame-interval-fs {frame_interval_fs:g}, not both")
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise InputError(f"--stride {stride} is not a positive integer")


def _symbols_of(frame: DumpFrame, sel: Selection, path: Path) -> list[str]:
    if frame.elements is not None:
        return [str(e) for e in frame.elements]
    if sel.type_map:
        missing = sorted(set(int(t) for t in frame.types) - set(sel.type_map))
        if missing:
            raise InputError(f"dump '{path}': type(s) {missing} are not in the type map {sel.type_map}")
        return [sel.type_map[int(t)] for t in frame.types]
    return [f"type {int(t)}" for t in frame.types]


def load_trajectory(
    path,
    selection: Selection,
    dt_fs: float | None = None,
    drift_correction: bool = True,
    system_symbols: list[str] | None = None,
    frame_interval_fs: float | None = None,
    stride: int = 1,
) -> Trajectory:
    """Read a dump and keep the selected ions' unwrapped positions.

    Parameters
    ----------
    path : str, Path or MDAnalysis Universe
        LAMMPS text dump (optionally gzip), anything ASE reads (extxyz, ``.traj``, XDATCAR,
        vasprun.xml), or an MDAnalysis ``Universe``.
    selection : Selection
        Species (by symbol) or types to keep.
    dt_fs : float, optional
        MD timestep, fs. Time between frames = difference of the timestep column x ``dt_fs``.
        Formats without a timestep column need ``frame_interval_fs`` instead.
    frame_interval_fs : float, optional
        Time between consecutive frames of the file, fs (the one unambiguous option).
    stride : int
        Keep every ``stride``-th frame (the frames are read but not stored).
    drift_correction : bool
        Subtract the displacement of the framework's centre of mass.
    system_symbols : list[str], optional
        Symbols of every atom of the simulated system (e.g. from its data file). When the dump
        holds only the selected ions (ionmd's driver dumps only the mobile species), the
        framework's centre of mass is inferred from zero total momentum:
        M_fw dR_fw = -M_sel dR_sel.

    Raises
    ------
    InputError
        Unknown species, unevenly spaced frames, atoms that change between frames, malformed file.
    """
    check_time_options(dt_fs, frame_interval_fs, stride)
    if not (hasattr(path, "trajectory") and hasattr(path, "atoms")):
        path = Path(path)
    if not selection.species and not selection.types:
        raise InputError("select the mobile ions with --species (e.g. Li) or --types (e.g. 1)")
    pos: list[np.ndarray] = []
    steps: list[int] = []
    cells: list[np.ndarray] = []
    origins: list[np.ndarray] = []
    coms: list[np.ndarray] = []
    mask = ids = prev_frac = unwrap_frac = None
    symbols: list[str] = []
    masses_fw = None
    for k_frame, frame in enumerate(iter_frames(path)):
        if frame_interval_fs is None and not frame.has_timestep:
            raise InputError(f"'{path}' gives no time step per frame: pass --frame-interval-fs "
                             "(the time between its frames, fs)")
        if frame_interval_fs is not None:
            frame.timestep = k_frame  # frames counted; the interval is given
        if k_frame % stride:
            continue
        bad = ~np.isfinite(frame.positions_A).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"'{path}' line {frame.line}: frame {k_frame} (timestep {frame.timestep}) has a "
                             f"non-finite position {frame.positions_A[i].tolist()} for atom id {int(frame.ids[i])}")
        if steps and frame.timestep <= steps[-1]:
            # a run resumed from a restart file appends frames from an earlier step: keep the new ones
            keep = int(np.searchsorted(np.asarray(steps), frame.timestep))
            warnings.warn(
                f"dump '{path}' line {frame.line}: timestep {frame.timestep} repeats earlier frames "
                f"(a resumed run); the {len(steps) - keep} earlier frame(s) from that step on were replaced",
                stacklevel=2,
            )
            del pos[keep:], steps[keep:], cells[keep:], origins[keep:], coms[keep:]
        if mask is None:
            all_symbols = _symbols_of(frame, selection, path)
            if selection.species:
                if frame.elements is None and not selection.type_map:
                    raise InputError(
                        f"dump '{path}' has no element column: give the type map with --data FILE "
                        "or --type-map 1=Li,2=F, or select by --types"
                    )
                present = set(all_symbols)
                for s in selection.species:
                    if s not in present:
                        raise InputError(f"species '{s}' is not in dump '{path}' (it has {sorted(present)})")
                mask = np.array([s in selection.species for s in all_symbols])
            else:
                present = set(int(t) for t in frame.types)
                for t in selection.types:
                    if t not in present:
                        raise InputError(f"type {t} is not in dump '{path}' (it has {sorted(present)})")
                mask = np.isin(frame.types, selection.types)
            ids = frame.ids.copy()
            symbols = [s for s, m in zip(all_symbols, mask, strict=True) if m]
            masses_fw = _masses([s for s, m in zip(all_symbols, mask, strict=True) if not m])
        elif len(frame.ids) != len(ids) or np.any(frame.ids != ids):
            raise InputError(
                f"dump '{path}' line {frame.line}: the atoms at timestep {frame.timestep} differ from the "
                "first frame (atoms lost or added); ionmd needs the same atoms in every frame"
            )
        xyz = frame.positions_A
        if not frame.unwrapped:
            # unwrap by the minimum-image displacement in fractional coordinates
            frac = np.linalg.solve(frame.cell_A.T, (xyz - frame.origin_A).T).T
            if prev_frac is None:
                unwrap_frac = frac.copy()
            else:
                d = frac - prev_frac
                unwrap_frac += d - np.round(d)
            prev_frac = frac
            xyz = unwrap_frac @ frame.cell_A + frame.origin_A
        pos.append(xyz[mask].copy())
        if np.any(~mask):
            coms.append(masses_fw @ xyz[~mask] / masses_fw.sum())
        else:
            coms.append(np.zeros(3))
        steps.append(frame.timestep)
        cells.append(frame.cell_A)
        origins.append(frame.origin_A)
    if len(pos) < 4:
        raise InputError(f"dump '{path}' has {len(pos)} frames; the MSD needs at least 4")
    steps_a = np.asarray(steps, dtype=np.int64)
    dsteps = np.diff(steps_a)
    if np.any(dsteps <= 0) or np.any(dsteps != dsteps[0]):
        bad = int(np.argmax((dsteps <= 0) | (dsteps != dsteps[0]))) + 1
        raise InputError(
            f"dump '{path}': frames are not evenly spaced in time (timestep {steps_a[bad - 1]} is followed "
            f"by {steps_a[bad]}, but the first interval is {dsteps[0]} steps)"
        )
    positions = np.stack(pos)
    com = np.stack(coms)
    drifted = bool(drift_correction and np.any(~mask))
    if drifted:
        positions -= (com - com[0])[:, None, :]
    elif drift_correction and system_symbols is not None and len(system_symbols) > len(symbols):
        m_sel = _masses(symbols)
        M_sel, M_all = m_sel.sum(), _masses(system_symbols).sum()
        com_sel = np.einsum("i,tid->td", m_sel, positions) / M_sel
        com = -(M_sel / (M_all - M_sel)) * (com_sel - com_sel[0])
        positions -= com[:, None, :]
        drifted = True
    cell_arr = np.stack(cells)
    return Trajectory(
        positions_A=positions,
        time_ps=(steps_a - steps_a[0]) * (frame_interval_fs if frame_interval_fs is not None else dt_fs) * 1e-3,
        volume_A3=np.abs(np.linalg.det(cell_arr)),
        cell_A=cell_arr,
        origin_A=np.stack(origins),
        symbols=symbols,
        ids=ids[mask],
        framework_com_A=com,
        drift_corrected=drifted,
        source=str(path),
    )
