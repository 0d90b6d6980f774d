"""How a model (interatomic potential) becomes LAMMPS ``pair_style``/``pair_coeff`` lines.

A model is either a TorchScript file run by ``pair_style mlip/torch`` (shared
contract 4) or a classical potential given as raw LAMMPS lines. Raw ``pair_coeff``
lines may contain ``{symbols}``, replaced by the chemical symbol of every atom type
in type order (for potentials such as ``eam/alloy`` that take an element list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
