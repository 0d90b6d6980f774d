"""ASE calculators named by a short specification string.

Specifications understood by :func:`make_calculator`:

``chgnet``
    CHGNet 0.3.0 (universal potential trained on Materials Project PBE(+U)
    data; weights ship in the ``chgnet`` wheel). ionmd uses it as the stand-in
    for DFT, because this machine cannot run DFT.
``lammps:<pair_style args>;<pair_coeff args>[;<pair_coeff args>...][;types=A,B,...]``
    A classical LAMMPS potential through :class:`ase.calculators.lammpslib.LAMMPSlib`,
    e.g. ``lammps:lj/cut 6.0;* * 0.01 2.5``. Atom type *i* is the *i*-th element
    of ``types=``; without it, the elements of the frames by increasing atomic
    number.
``python:<module>:<factory>``
    ``factory()`` (or ``factory(elements)`` if it takes one argument) returns
    an ASE calculator. If the calculator has a ``species`` attribute (a list of
    chemical symbols), frames with other elements are refused.
``emt`` / ``lj``
    ASE's cheap toy calculators (tests and examples only).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_numbers, chemical_symbols

from ionmd.errors import InputError

EMT_ELEMENTS = ("H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")


@dataclass
class NamedCalculator:
    """An ASE calculator with the description needed for provenance.

    Attributes
    ----------
    calc
        The ASE calculator.
    spec
        The specification string it was made from.
    elements
        Chemical symbols it can label, or ``None`` if any element is accepted.
    """

    calc: Calculator
    spec: str
    elements: tuple[str, ...] | None


def _chgnet() -> NamedCalculator:
    try:
        import ase.constraints
        import ase.filters

        # chgnet 0.3.0 imports ExpCellFilter from its pre-3.23 location.
        if not hasattr(ase.constraints, "ExpCellFilter"):
            ase.constraints.ExpCellFilter = ase.filters.ExpCellFilter
        from chgnet.model import CHGNetCalculator
    except ImportError as exc:
        raise InputError(
            f"--calculator chgnet: cannot import chgnet ({exc}); "
            "`pip install 'chgnet>=0.3.1,<0.4'` (CHGNet model 0.3.0; the chgnet 0.3.0 wheel "
            "itself was yanked: it lacks the weights)"
        ) from exc
    calc = CHGNetCalculator(use_device="cpu")
    # CHGNet 0.3.0 was trained on elements Z = 1..94.
    return NamedCalculator(calc, "chgnet", tuple(chemical_symbols[1:95]))


def _lammps(spec: str, elements: Sequence[str]) -> NamedCalculator:
    import mpi4py.MPI  # noqa: F401  (must precede `import lammps`)
    from ase.calculators.lammpslib import LAMMPSlib

    body = spec.split(":", 1)[1]
    parts = [p.strip() for p in body.split(";") if p.strip()]
    types = [p for p in parts if p.startswith("types=")]
    parts = [p for p in parts if not p.startswith("types=")]
    if len(parts) < 2:
        raise InputError(
            f"--calculator {spec!r}: expected 'lammps:<pair_style args>;<pair_coeff args>', "
            "e.g. 'lammps:lj/cut 6.0;* * 0.01 2.5'"
        )
    if types:
        order = [s.strip() for s in types[0].split("=", 1)[1].split(",") if s.strip()]
    else:
        order = sorted(set(elements), key=lambda s: atomic_numbers[s])
    for sym in order:
        if sym not in atomic_numbers:
            raise InputError(f"--calculator {spec!r}: unknown element {sym!r} in types=")
    cmds = [f"pair_style {parts[0]}"] + [f"pair_coeff {p}" for p in parts[1:]]
    calc = LAMMPSlib(
        lmpcmds=cmds,
        atom_types={s: i + 1 for i, s in enumerate(order)},
        log_file=None,
        keep_alive=True,
    )
    return NamedCalculator(calc, spec, tuple(order))


def _python(spec: str, elements: Sequence[str]) -> NamedCalculator:
    try:
        _, module, factory = spec.split(":", 2)
    except ValueError:
        raise InputError(f"--calculator {spec!r}: expected 'python:<module>:<factory>'") from None
    try:
        func = getattr(importlib.import_module(module), factory)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"--calculator {spec!r}: cannot load {module}.{factory} ({exc})") from exc
    nparams = len(inspect.signature(func).parameters)
    calc = func(list(elements)) if nparams >= 1 else func()
    species = getattr(calc, "species", None)
    return NamedCalculator(calc, spec, tuple(species) if species else None)


def make_calculator(spec: str, elements: Sequence[str] = ()) -> NamedCalculator:
    """Build the ASE calculator named by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec
        ``chgnet``, ``lammps:...``, ``python:module:factory``, ``emt`` or ``lj``.
    elements
        The chemical symbols present in the frames to be labelled (used to
        number LAMMPS atom types and passed to one-argument factories).

    Raises
    ------
    InputError
        For an unknown or malformed specification.
    """
    if spec == "chgnet":
        return _chgnet()
    if spec.startswith("lammps:"):
        return _lammps(spec, elements)
    if spec.startswith("python:"):
        return _python(spec, elements)
    if spec == "emt":
        from ase.calculators.emt import EMT

        return NamedCalculator(EMT(), spec, EMT_ELEMENTS)
    if spec == "lj":
        from ase.calculators.lj import LennardJones

        return NamedCalculator(
            LennardJones(sigma=2.0, epsilon=0.01, rc=6.0, smooth=True), spec, None
        )
    raise InputError(
        f"--calculator {spec!r}: unknown calculator; use chgnet, lammps:<pair_style spec>, "
        "python:<module>:<factory>, emt or lj"
    )


def isolated_atom_energy_eV(
    named: NamedCalculator, symbol: str, box_A: float = 20.0
) -> float | None:
    """Return the labeller's energy of one isolated atom of ``symbol`` in eV, or None.

    A single atom in a cubic box of side ``box_A`` is tried first. Graph-based
    potentials such as CHGNet cannot evaluate an atom without neighbours; then
    two atoms 10 Å apart in a 30 Å box (beyond their cutoff) are used and the
    energy is halved. CHGNet refuses even that (an atom without neighbours
    inside its 6 Å atom-graph cutoff), so for CHGNet the pair sits at 5.999 Å,
    where its smooth cutoff envelope has switched the pair term off (the energy
    per atom changes by < 1e-6 eV between 5.99 and 5.9999 Å).
    Returns None if nothing works.
    """
    pair_A = 5.999 if named.spec == "chgnet" else 10.0
    trials = [
        (Atoms(symbol, cell=[box_A] * 3, pbc=True), 1),
        (Atoms(symbol * 2, positions=[[0, 0, 0], [0, 0, pair_A]], cell=[30.0] * 3, pbc=True), 2),
    ]
    for atoms, n in trials:
        try:
            atoms.calc = named.calc
            energy = float(atoms.get_potential_energy()) / n
        except Exception:  # noqa: BLE001 - any calculator failure means "not available"
            continue
        if np.isfinite(energy):
            return energy
    return None
