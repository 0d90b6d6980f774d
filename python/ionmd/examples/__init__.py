"""Built-in worked examples: material-specific data and thin recipes.

Generic ionmd packages never import from here; an example imports the generic
library and supplies its material's constants, structures and references.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from ionmd.errors import InputError

#: Built-in structures: name (lower case) -> module with ``unit_cell(a_A=None)``,
#: ``DESCRIPTION`` and optionally ``NAMED_SITES``. This index is the only place that
#: generic code looks up examples by name; it never imports a wing otherwise.
BUILTIN_STRUCTURES: dict[str, str] = {"lif": "ionmd.examples.lif.structure"}

#: The structure that ``ionmd structure`` builds when given no file.
DEFAULT_STRUCTURE = "lif"


@dataclass
class BuiltinStructure:
    """A built-in unit cell with its description and named interstitial sites."""

    name: str
    unit: Atoms
    description: str
    named_sites: dict[str, np.ndarray] = field(default_factory=dict)


def is_builtin(name: object) -> bool:
    """Whether ``name`` (any case, optionally ``builtin:NAME``) names a built-in structure."""
    if name is None:
        return True
    text = str(name).lower().removeprefix("builtin:")
    return text in BUILTIN_STRUCTURES


def builtin_structure(name: str | None = None, a_A: float | None = None) -> BuiltinStructure:
    """Return the built-in structure ``name`` (default :data:`DEFAULT_STRUCTURE`).

    ``a_A`` is the lattice constant of built-ins that have one (Å).
    """
    key = DEFAULT_STRUCTURE if name is None else str(name).lower().removeprefix("builtin:")
    if key not in BUILTIN_STRUCTURES:
        raise InputError(f"unknown built-in structure '{name}': built-ins are "
                         f"{', '.join(sorted(BUILTIN_STRUCTURES))}")
    module = importlib.import_module(BUILTIN_STRUCTURES[key])
    unit = module.unit_cell() if a_A is None else module.unit_cell(a_A=a_A)
    return BuiltinStructure(name=key, unit=unit, description=module.DESCRIPTION,
                            named_sites=dict(getattr(module, "NAMED_SITES", {})))
