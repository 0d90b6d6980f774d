"""The ``structure`` stage of ``ionmd study``: the supercell, its point defect, and what was built.

:func:`build_cell` writes the perfect supercell and the MD cell with the study's defect
(:func:`ionmd.driver.structure.make_structure`) and records them in a :class:`CellInfo`;
:func:`defect_specs` turns the ``[defect]`` table into the structure builder's
specifications, which the fit stage samples too (:func:`fit_structure`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.jsonfile import write_json_atomic
from ionmd.study.config import StudyConfig


@dataclass
class CellInfo:
    """What the structure stage built.

    Attributes
    ----------
    cell_data, perfect_data
        LAMMPS data files of the MD cell (with the defect) and of the perfect supercell.
    n_atoms, counts
        Atoms of the MD cell, in all and per element.
    types
        Element of each LAMMPS atom type, in type order.
    description
        How the cell was built.
    defect
        The removed or added atom: species, index, Wyckoff label, fractional and
        Cartesian position (empty without a defect).
    neb_data, neb_description, neb_n_atoms
        The perfect supercell of the NEBs when ``[neb] supercell`` differs from the MD
        cell's (None: the NEBs use ``perfect_data``), how it was built and its atoms.
    """

    cell_data: Path
    perfect_data: Path
    n_atoms: int
    counts: dict[str, int]
    types: list[str]
    description: str
    defect: dict[str, Any] = field(default_factory=dict)
    neb_data: Path | None = None
    neb_description: str = ""
    neb_n_atoms: int = 0

    @property
    def neb_reference(self) -> Path:
        """The perfect supercell the NEB end points are built from."""
        return self.neb_data or self.perfect_data

    def summary(self) -> str:
        """One line for the progress display."""
        d = self.defect
        where = ""
        if d:
            where = (f"; {d.get('kind')} {d.get('species')}"
                     + (f" at {d['wyckoff']}" if d.get("wyckoff") else "")
                     + (f" (atom {d['index']})" if d.get("index") is not None else ""))
        return f"{self.description}, {self.n_atoms} atoms{where}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        for key in ("cell_data", "perfect_data", "neb_data"):
            d[key] = None if d[key] is None else str(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(**(d | {key: Path(d[key]) for key in ("cell_data", "perfect_data", "neb_data")
                           if d.get(key) is not None}))


def defect_specs(cfg: StudyConfig) -> tuple[list[str], list[str]]:
    """The study's defect as ``(add, remove)`` specifications of :func:`make_structure`."""
    d = cfg.defect
    if d.kind == "none":
        return [], []
    frac = ",".join(f"{x:g}" for x in d.frac) if d.frac is not None else None
    if d.kind == "interstitial":
        return [f"{d.species}@{frac if frac else 'void'}"], []
    if d.index is not None:
        return [], [str(d.index)]
    if d.site is not None:
        site = d.site if d.site.startswith(f"{d.species}(") else f"{d.species}@{d.site}"
        return [], [site]
    return [], [f"{d.species}@{frac}" if frac else str(d.species)]


def build_cell(cfg: StudyConfig, outdir: Path) -> CellInfo:
    """Write the perfect supercell and the MD cell (with the defect); return what was built.

    A finished stage (``cell.json`` present) is read back, so a resumed study keeps
    exactly the cell its MD used.

    Raises
    ------
    InputError
        The structure cannot be read or built, the defect does not fit it, or a mobile
        species is missing from the cell.
    """
    from ionmd.driver.structure import make_structure

    record = outdir / "cell.json"
    if record.is_file():
        return CellInfo.from_dict(json.loads(record.read_text()))
    outdir.mkdir(parents=True, exist_ok=True)
    source = cfg.structure.file if cfg.structure.file is not None else cfg.structure.builtin
    size = {"supercell": cfg.structure.supercell or 1, "min_length_A": cfg.structure.min_length_A}
    perfect = make_structure(outdir / "perfect.data", source=source, types=cfg.structure.types,
                             **size)
    types = [perfect.type_map[t] for t in sorted(perfect.type_map)]
    add, remove = defect_specs(cfg)
    if cfg.defect.kind == "interstitial" and cfg.defect.species not in types:
        types.append(str(cfg.defect.species))
    built = make_structure(outdir / "cell.data", source=source, types=types, add=add,
                           remove=remove, **size)
    defect: dict[str, Any] = {}
    if built.defect_sites:
        defect = dict(built.defect_sites[0])
        if defect.get("species") != cfg.defect.species:
            raise InputError(f"{cfg.path}: defect.index {cfg.defect.index} is a "
                             f"{defect.get('species')} atom, not {cfg.defect.species}")
    info = CellInfo(cell_data=outdir / "cell.data", perfect_data=outdir / "perfect.data",
                    n_atoms=built.n_atoms, counts=dict(built.counts),
                    types=[built.type_map[t] for t in sorted(built.type_map)],
                    description=built.description, defect=defect)
    if cfg.neb.supercell and cfg.neb.supercell != str(cfg.structure.supercell or ""):
        neb = make_structure(outdir / "neb_perfect.data", source=source, types=info.types,
                             supercell=cfg.neb.supercell)
        info.neb_data, info.neb_description, info.neb_n_atoms = \
            outdir / "neb_perfect.data", neb.description, neb.n_atoms
    missing = [s for s in cfg.mobile if s not in info.counts]
    if missing:
        raise InputError(f"{cfg.path}: species.mobile names {', '.join(missing)}, which the "
                         f"cell does not contain ({', '.join(info.counts)})")
    write_json_atomic(record, info.to_dict())
    return info


def fit_structure(cfg: StudyConfig):
    """The cells a study's fit samples (:class:`ionmd.study.fit_stage.FitStructure`)."""
    from ionmd.study.fit_stage import FitStructure

    add, remove = defect_specs(cfg)
    source = cfg.structure.file if cfg.structure.file is not None else cfg.structure.builtin
    return FitStructure(source=str(source), supercell=cfg.structure.supercell or 1,
                        min_length_A=cfg.structure.min_length_A, mobile=list(cfg.mobile),
                        vacancies=remove, interstitials=add)
