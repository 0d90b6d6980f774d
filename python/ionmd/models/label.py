"""Attach energies, forces and stresses from an ASE calculator to frames.

Output is extended XYZ with ASE's standard result keys (``energy`` in eV,
``forces`` in eV/Å, ``stress`` in eV/Å^3, Voigt order), which ``ase.io.read``
turns back into a calculator result. Each frame also records ``labeller`` and
``frame_index`` (its index in the input) in ``info``.

Labelling is resumable: frames are appended one at a time and flushed, so an
interrupted run keeps what it has done; rerunning the same command skips the
frames already in the output (checked by index and positions).

The isolated-atom energies of the labeller (for MACE's E0s) are written next to
the output as ``OUT.e0.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers
from ase.io import iread, read, write

from ionmd.errors import InputError
from ionmd.models.calculators import NamedCalculator, isolated_atom_energy_eV, make_calculator


@dataclass
class LabelResult:
    """Summary of one labelling run (JSON-serialisable).

    Attributes
    ----------
    output
        Path of the labelled extended-XYZ file.
    n_frames
        Frames in the output after this run.
    n_new
        Frames labelled by this run (the others were already there).
    calculator
        The calculator specification.
    e0_eV
        Isolated-atom energies of the labeller per element (eV), where available.
    """

    output: str
    n_frames: int
    n_new: int
    calculator: str
    e0_eV: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the result as a JSON string."""
        return json.dumps(asdict(self), indent=2)


def read_frames(path: Path | str) -> list[Atoms]:
    """Read every frame of ``path`` (any ASE-readable format).

    Raises
    ------
    InputError
        If the file is missing, unreadable or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        frames = read(path, index=":")
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for bad files
        raise InputError(f"{path}: cannot read frames ({exc})") from exc
    if not frames:
        raise InputError(f"{path}: contains no frames")
    return frames


def check_frames(frames: Sequence[Atoms], source: str, allowed: Sequence[str] | None) -> None:
    """Refuse frames without a full periodic cell or with elements outside ``allowed``.

    Raises
    ------
    InputError
        Naming the file, the frame index and the element(s).
    """
    for i, atoms in enumerate(frames):
        if not all(atoms.pbc) or atoms.cell.rank < 3 or atoms.get_volume() <= 1e-6:
            raise InputError(
                f"{source}: frame {i} has no (or a degenerate) periodic cell; label only periodic frames"
            )
        if allowed is not None:
            bad = sorted(set(atoms.get_chemical_symbols()) - set(allowed))
            if bad:
                raise InputError(
                    f"{source}: frame {i} contains element(s) {', '.join(bad)} unknown to the calculator "
                    f"(it knows {', '.join(allowed) if len(allowed) < 20 else f'{len(allowed)} elements'})"
                )


def _done_frames(out: Path, frames: Sequence[Atoms]) -> int:
    """Return how many leading frames of ``out`` are complete labels of ``frames``; repair a torn tail."""
    if not out.exists():
        return 0
    good: list[Atoms] = []
    torn = False
    try:
        for atoms in iread(out, index=":"):
            good.append(atoms)
    except Exception:  # noqa: BLE001 - a frame cut by an interrupted write
        torn = True
    for i, atoms in enumerate(good):
        if (
            i >= len(frames)
            or len(atoms) != len(frames[i])
            or not np.allclose(atoms.positions, frames[i].positions, atol=1e-6)
        ):
            raise InputError(
                f"{out}: frame {i} does not match frame {i} of the input; "
                "it was labelled from other frames (remove it or choose another -o)"
            )
    if torn:
        write(out, good, format="extxyz")
    return len(good)


def label_atoms(atoms: Atoms, named: NamedCalculator, index: int) -> Atoms:
    """Return a copy of ``atoms`` carrying the calculator's energy, forces and stress."""
    work = atoms.copy()
    work.calc = named.calc
    energy = float(work.get_potential_energy())
    forces = np.array(work.get_forces(), dtype=float)
    try:
        stress = np.array(work.get_stress(voigt=True), dtype=float)
    except Exception:  # noqa: BLE001 - some calculators have no stress
        stress = None
    if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
        raise InputError(
            f"frame {index}: the calculator {named.spec!r} returned a non-finite energy or force"
        )
    out = atoms.copy()
    for key in ("energy", "free_energy", "stress"):
        out.info.pop(key, None)
    out.arrays.pop("forces", None)
    out.info["labeller"] = named.spec
    out.info["frame_index"] = index
    results = {"energy": energy, "forces": forces}
    if stress is not None:
        results["stress"] = stress
    out.calc = SinglePointCalculator(out, **results)
    return out


def label_frames(
    frames_path: Path | str,
    output: Path | str,
    calculator: str = "chgnet",
    *,
    elements: Sequence[str] | None = None,
    limit: int | None = None,
) -> LabelResult:
    """Label the frames in ``frames_path`` with ``calculator`` into ``output`` (resumable).

    Parameters
    ----------
    frames_path
        Input frames (extended XYZ, or any format ASE reads).
    output
        Output extended-XYZ path; existing complete frames are kept and skipped.
    calculator
        Calculator specification (see :mod:`ionmd.models.calculators`).
    elements
        If given, the only chemical symbols allowed in the frames.
    limit
        Label at most this many frames from the start of the input.

    Raises
    ------
    InputError
        For a missing/unreadable input, a frame without a periodic cell, an
        element unknown to the calculator, or an output from other frames.
    """
    src = Path(frames_path)
    out = Path(output)
    frames = read_frames(src)
    if limit is not None:
        frames = frames[:limit]
    for sym in elements or ():
        if sym not in atomic_numbers:
            raise InputError(f"--elements: {sym!r} is not a chemical symbol")
    present = sorted(
        {s for a in frames for s in a.get_chemical_symbols()}, key=lambda s: atomic_numbers[s]
    )
    check_frames(frames, str(src), elements)
    named = make_calculator(calculator, present)
    check_frames(frames, str(src), named.elements)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done_frames(out, frames)
    e0 = _write_e0(out, named, present)
    with open(out, "a") as fh:
        for i in range(done, len(frames)):
            write(fh, label_atoms(frames[i], named, i), format="extxyz")
            fh.flush()
            os.fsync(fh.fileno())
    return LabelResult(str(out), len(frames), len(frames) - done, calculator, e0)


def e0_path(data: Path | str) -> Path:
    """Return the isolated-atom-energy sidecar path of a labelled data file (``DATA.e0.json``)."""
    data = Path(data)
    return data.with_name(data.name + ".e0.json") if data.suffix != ".json" else data


def _write_e0(out: Path, named: NamedCalculator, symbols: Sequence[str]) -> dict[str, float]:
    path = e0_path(out)
    e0: dict[str, float] = {}
    if path.exists():
        e0 = json.loads(path.read_text()).get("e0_eV", {})
    missing = [s for s in symbols if s not in e0]
    for sym in missing:
        energy = isolated_atom_energy_eV(named, sym)
        if energy is not None:
            e0[sym] = energy
    if missing or not path.exists():
        path.write_text(json.dumps({"labeller": named.spec, "e0_eV": e0}, indent=2) + "\n")
    return e0


def load_e0(data: Path | str) -> dict[str, float]:
    """Return the isolated-atom energies (eV per element) stored next to ``data``, or ``{}``.

    For a compressed ``DATA.extxyz.xz`` (or ``.gz``, ``.bz2``), ``DATA.extxyz.e0.json`` is
    also accepted.
    """
    path = e0_path(data)
    if not path.exists() and Path(data).suffix in (".xz", ".gz", ".bz2"):
        path = e0_path(Path(data).with_suffix(""))
    if not path.exists():
        return {}
    return {k: float(v) for k, v in json.loads(path.read_text()).get("e0_eV", {}).items()}
