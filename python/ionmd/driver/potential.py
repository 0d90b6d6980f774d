"""How a model (interatomic potential) becomes LAMMPS ``pair_style``/``pair_coeff`` lines.

A model is either a TorchScript file run by ``pair_style mlip/torch`` (shared
contract 4) or a classical potential given as raw LAMMPS lines. Raw ``pair_coeff``
lines may contain ``{symbols}``, replaced by the chemical symbol of every atom type
in type order (for potentials such as ``eam/alloy`` that take an element list).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ionmd.errors import InputError

TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
DEVIATION_FILE = "model_devi.out"


@dataclass
class ModelSpec:
    """One model of a run.

    Attributes
    ----------
    name : str
        Short name, used in run ids and directory names.
    path : str or None
        TorchScript model file (``pair_style mlip/torch``); None for a raw potential.
    pair_style : str or None
        Raw ``pair_style`` arguments (without the word ``pair_style``).
    pair_coeff : list of str
        Raw ``pair_coeff`` argument lines (without the word ``pair_coeff``).
    commands : list of str
        Extra raw LAMMPS commands after the pair lines (e.g. ``kspace_style``).
    """

    name: str
    path: str | None = None
    pair_style: str | None = None
    pair_coeff: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def is_torch(self) -> bool:
        """Whether this model runs through ``pair_style mlip/torch``."""
        return self.path is not None

    def describe(self) -> str:
        """Return the model file, or the raw pair style, for logs and indexes."""
        return self.path if self.path is not None else f"pair_style {self.pair_style}"


METADATA_NAME = "ionmd.json"


@lru_cache(maxsize=32)
def _species_of(path: str, mtime_ns: int, size: int) -> tuple[str, ...] | None:  # noqa: ARG001
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            meta = [n for n in names if n.endswith(f"/extra/{METADATA_NAME}")]
            if meta:
                species = json.loads(archive.read(meta[0])).get("species")
                return tuple(str(s) for s in species) if species else None
            if not any("deepmd" in n for n in names):
                return None
    except (OSError, zipfile.BadZipFile, ValueError, KeyError):
        return None
    try:  # a DeePMD-kit frozen model: its type map is a method of the module
        import torch

        from ionmd.plugin import deepmd_stubs_path

        stubs = deepmd_stubs_path()
        if stubs is not None and not hasattr(torch.ops.deepmd, "tabulate_fusion_se_a"):
            torch.ops.load_library(str(stubs))
        module = torch.jit.load(path, map_location="cpu")
        return tuple(str(s) for s in module.get_type_map())
    except Exception:  # noqa: BLE001 - unreadable here: LAMMPS reports it when loading
        return None


def model_species(path: str | Path) -> list[str] | None:
    """Chemical symbols a TorchScript model knows, from its metadata; None if unreadable.

    MACE exports carry them in the ``ionmd.json`` extra file (read from the
    archive without torch); DeePMD-kit models give them by ``get_type_map()``.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    species = _species_of(str(path), stat.st_mtime_ns, stat.st_size)
    return list(species) if species is not None else None


def check_species(models: list[ModelSpec], symbols: list[str], where: str = "") -> None:
    """Raise :class:`InputError` if an atom type's element is unknown to a TorchScript model.

    ``symbols`` are the elements of the atom types in type order (the
    ``pair_coeff * *`` list); models whose species cannot be read are not checked.
    """
    for model in models:
        if not model.is_torch:
            continue
        known = model_species(str(model.path))
        if known is None:
            continue
        unknown = [s for s in dict.fromkeys(symbols) if s not in known]
        if unknown:
            source = f" of {where}" if where else ""
            raise InputError(
                f"element(s) {', '.join(unknown)} of the atom types{source} "
                f"({' '.join(symbols)}) unknown to model '{model.path}', which knows only "
                f"{' '.join(known)}: use a model trained on these elements, or a structure "
                "made of the model's species")


def model_from_path(path: str | Path, name: str | None = None) -> ModelSpec:
    """Return the :class:`ModelSpec` of a TorchScript model file."""
    path = Path(path)
    return ModelSpec(name=name or path.stem, path=str(path))


def pair_lines(
    models: list[ModelSpec],
    symbols: list[str],
    deviation_every: int = 0,
    deviation_file: str = DEVIATION_FILE,
    device: str = "auto",
    deviation_append: bool = False,
) -> list[str]:
    """Return the pair (and extra) commands for ``models``; the first model drives MD.

    With several TorchScript models, all are evaluated and, when
    ``deviation_every > 0``, the force deviation between them is written every
    ``deviation_every`` steps to ``deviation_file``. ``deviation_append`` adds
    ``deviation_append yes`` (a resumed run continues the file instead of
    truncating it).
    """
    if not models:
        raise InputError("no model given")
    first = models[0]
    if first.is_torch:
        torch_models = [m for m in models if m.is_torch]
        if len(torch_models) != len(models):
            raise InputError(
                "cannot mix TorchScript and raw models: "
                + ", ".join(m.name for m in models if not m.is_torch)
            )
        args = " ".join(str(m.path) for m in models)
        if len(models) > 1 and deviation_every > 0:
            args += f" deviation {int(deviation_every)} {deviation_file}"
            if deviation_append:
                args += " deviation_append yes"
        args += f" device {device}"
        return [f"pair_style      mlip/torch {args}", f"pair_coeff      * * {' '.join(symbols)}"]
    if len(models) > 1:
        raise InputError(
            f"model '{first.name}' is a raw pair style; several models (for a deviation) "
            "need TorchScript models"
        )
    if not first.pair_style:
        raise InputError(f"model '{first.name}' has neither a model file nor a pair_style")
    if not first.pair_coeff:
        raise InputError(f"model '{first.name}' has a pair_style but no pair_coeff lines")
    lines = [f"pair_style      {first.pair_style}"]
    sym = " ".join(symbols)
    lines += [f"pair_coeff      {c.replace('{symbols}', sym)}" for c in first.pair_coeff]
    lines += list(first.commands)
    return lines
