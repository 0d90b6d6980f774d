"""Energies of candidate orderings: any ASE calculator, or a TorchScript model in LAMMPS.

Specifications (``--energy``):

``chgnet`` (default), ``emt``, ``lj``, ``lammps:<pair_style>;<pair_coeff>``, ``python:<module>:<factory>``
    An ASE calculator made by :func:`ionmd.models.calculators.make_calculator`;
    ``<module>:<factory>`` alone means ``python:<module>:<factory>``. Magnetic moments
    are recorded when the calculator provides them (CHGNet predicts them).
``model:<file.pt>``
    A TorchScript model (MACE or DeePMD export) through ``pair_style mlip/torch``, one
    single-process LAMMPS single point (or fixed-cell ``minimize``) per candidate.

Relaxation (``relax``): ``none``; ``fixed-cell`` (atoms only, ASE BFGS, or LAMMPS
``minimize`` for ``model:``); ``cell`` (atoms and cell, ASE BFGS on a
:class:`ase.filters.FrechetCellFilter`; not available for ``model:``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ionmd.errors import InputError, IonmdError

RELAX_MODES = ("none", "fixed-cell", "cell")


@dataclass
class Evaluation:
    """Energy of one structure (eV), with the relaxed structure when relaxed."""

    energy_eV: float
    relaxed: Atoms | None = None
    magmoms: np.ndarray | None = None


class Evaluator:
    """Turns structures into energies with one calculator specification.

    Parameters
    ----------
    spec
        See the module docstring.
    elements
        Elements that candidates may contain (for LAMMPS type numbering and checks).
    relax
        ``none``, ``fixed-cell`` or ``cell``.
    fmax_eV_A
        Force threshold of the relaxation.
    max_steps
        Most optimiser steps per candidate.
    """

    def __init__(self, spec: str, elements: list[str], relax: str = "none",
                 fmax_eV_A: float = 0.05, max_steps: int = 200) -> None:
        if relax not in RELAX_MODES:
            raise InputError(f"--relax {relax!r}: use one of {', '.join(RELAX_MODES)}")
        self.spec = spec
        self.relax = relax
        self.fmax_eV_A = float(fmax_eV_A)
        self.max_steps = int(max_steps)
        self.elements = list(elements)
        self._potential = None
        self._calc = None
        if spec.startswith("model:"):
            from ionmd.neb.potential import Potential

            if relax == "cell":
                raise InputError(f"--energy {spec!r}: --relax cell is not available through "
                                 "LAMMPS; use --relax fixed-cell or an ASE calculator")
            species = _model_species(spec.split(":", 1)[1])
            missing = sorted(set(self.elements) - set(species)) if species else []
            if missing:
                raise InputError(f"--energy {spec!r}: the model has no element(s) "
                                 f"{', '.join(missing)} (it knows {', '.join(species)})")
            self._potential = Potential.from_model(spec.split(":", 1)[1], self.elements)
        else:
            from ionmd.models.calculators import make_calculator

            full = spec
            if ":" in spec and spec.split(":", 1)[0] not in ("lammps", "python"):
                full = "python:" + spec
            named = make_calculator(full, self.elements)
            if named.elements is not None:
                missing = sorted(set(self.elements) - set(named.elements))
                if missing:
                    raise InputError(f"--energy {spec!r}: cannot label element(s) "
                                     f"{', '.join(missing)}")
            self._calc = named.calc

    def __call__(self, atoms: Atoms) -> Evaluation:
        """Energy of ``atoms`` (relaxed first if asked)."""
        try:
            if self._potential is not None:
                return self._lammps(atoms)
            return self._ase(atoms)
        except IonmdError:
            raise
        except Exception as exc:  # noqa: BLE001 - calculators raise anything
            raise IonmdError(f"--energy {self.spec!r} failed on {atoms.get_chemical_formula()}: "
                             f"{exc}") from exc

    def _ase(self, atoms: Atoms) -> Evaluation:
        atoms = atoms.copy()
        atoms.calc = self._calc
        relaxed = None
        if self.relax != "none":
            from ase.optimize import BFGS

            target = atoms
            if self.relax == "cell":
                from ase.filters import FrechetCellFilter

                target = FrechetCellFilter(atoms)
            BFGS(target, logfile=None).run(fmax=self.fmax_eV_A, steps=self.max_steps)
            relaxed = atoms
        energy = float(atoms.get_potential_energy())
        magmoms = None
        if "magmoms" in getattr(self._calc, "implemented_properties", ()):
            try:
                magmoms = np.asarray(atoms.get_magnetic_moments(), float)
            except Exception:  # noqa: BLE001 - optional property
                magmoms = None
        if relaxed is not None:
            relaxed = relaxed.copy()
        return Evaluation(energy, relaxed, magmoms)

    def _lammps(self, atoms: Atoms) -> Evaluation:
        from ionmd.neb.relax import evaluate, relax_endpoint

        if self.relax == "fixed-cell":
            res = relax_endpoint(atoms, self._potential, ftol_eV_A=self.fmax_eV_A,
                                 max_iter=self.max_steps)
            return Evaluation(res.energy_eV, res.atoms)
        energy, _ = evaluate(atoms, self._potential)
        return Evaluation(float(energy))


def _model_species(path: str) -> list[str]:
    """Elements a TorchScript model declares in its ``ionmd.json`` metadata (empty if none)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("ionmd.json")]
            if not names:
                return []
            return [str(s) for s in json.loads(zf.read(names[0])).get("species", [])]
    except (OSError, zipfile.BadZipFile, ValueError):
        return []
