"""Write labelled ASE frames as DeePMD-kit ``deepmd/npy`` systems.

A DeePMD system is a directory holding frames with the same atom-type
sequence: ``type.raw`` (one type index per atom), ``type_map.raw`` (symbols)
and ``set.000/`` with ``coord.npy`` (Å), ``box.npy`` (Å), ``energy.npy`` (eV),
``force.npy`` (eV/Å) and, when stresses exist, ``virial.npy`` (eV,
virial = -stress x volume). Frames are grouped by their symbol sequence, one
system per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import InputError


def write_deepmd_systems(
    frames: Sequence[Atoms], out_dir: Path | str, type_map: Sequence[str], source: str = "frames"
) -> list[Path]:
    """Write ``frames`` (with energies and forces) as deepmd/npy systems under ``out_dir``.

    Returns
    -------
    list of Path
        One directory per distinct atom-type sequence.

    Raises
    ------
    InputError
        If a frame has no energy/forces or an element missing from ``type_map``.
    """
    out_dir = Path(out_dir)
    groups: dict[tuple[str, ...], list[Atoms]] = {}
    for i, atoms in enumerate(frames):
        syms = tuple(atoms.get_chemical_symbols())
        bad = sorted(set(syms) - set(type_map))
        if bad:
            raise InputError(
                f"{source}: frame {i} has element(s) {', '.join(bad)} not in type_map {list(type_map)}"
            )
        if (
            atoms.calc is None
            or "energy" not in atoms.calc.results
            or "forces" not in atoms.calc.results
        ):
            raise InputError(
                f"{source}: frame {i} has no energy/forces labels (run `ionmd label` first)"
            )
        groups.setdefault(syms, []).append(atoms)
    paths = []
    for k, (syms, group) in enumerate(groups.items()):
        sysdir = out_dir / f"sys{k:03d}_{len(syms)}atoms"
        setdir = sysdir / "set.000"
        setdir.mkdir(parents=True, exist_ok=True)
        types = np.array([list(type_map).index(s) for s in syms], dtype=int)
        np.savetxt(sysdir / "type.raw", types, fmt="%d")
        (sysdir / "type_map.raw").write_text("\n".join(type_map) + "\n")
        n = len(syms)
        np.save(setdir / "coord.npy", np.array([a.positions.reshape(3 * n) for a in group]))
        np.save(setdir / "box.npy", np.array([np.asarray(a.cell).reshape(9) for a in group]))
        np.save(
            setdir / "energy.npy", np.array([a.calc.results["energy"] for a in group], dtype=float)
        )
        np.save(
            setdir / "force.npy",
            np.array([np.asarray(a.calc.results["forces"]).reshape(3 * n) for a in group]),
        )
        if all("stress" in a.calc.results for a in group):
            vir = [-_voigt_to_matrix(a.calc.results["stress"]) * a.get_volume() for a in group]
            np.save(setdir / "virial.npy", np.array([v.reshape(9) for v in vir]))
        paths.append(sysdir)
    return paths


def _voigt_to_matrix(stress: np.ndarray) -> np.ndarray:
    s = np.asarray(stress, dtype=float)
    if s.shape == (3, 3):
        return s
    xx, yy, zz, yz, xz, xy = s
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
