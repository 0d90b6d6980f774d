"""Shared fixtures: small structures and models made inside the test run."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MACE_CHECKPOINT = ROOT / "inputs" / "models" / "lif_mace.model"
DEEPMD_FIXTURES = ROOT / "tests" / "fixtures" / "deepmd"


def lif_interstitial(a_A: float = 4.03, rattle_A: float = 0.05, seed: int = 1):
    """2x2x2 conventional rock-salt LiF plus one Li at a tetrahedral site (65 atoms)."""
    from ase import Atom
    from ase.build import bulk

    atoms = bulk("LiF", "rocksalt", a=a_A, cubic=True).repeat(2)
    atoms.append(Atom("Li", (a_A / 4, a_A / 4, a_A / 4)))
    atoms.rattle(rattle_A, seed=seed)
    return atoms


def lif_triclinic(a_A: float = 4.03, seed: int = 2):
    """3x3x3 primitive (rhombohedral, 60 degree) rock-salt cell: 54 atoms, triclinic box."""
    from ase.build import bulk

    atoms = bulk("LiF", "rocksalt", a=a_A).repeat(3)
    atoms.rattle(0.05, seed=seed)
    return atoms


def lif_small(a_A: float = 4.03, seed: int = 3):
    """One 8-atom conventional cell: the cutoff exceeds half the box."""
    from ase.build import bulk

    atoms = bulk("LiF", "rocksalt", a=a_A, cubic=True)
    atoms.rattle(0.08, seed=seed)
    return atoms


@pytest.fixture(scope="session")
def mace_float64(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, exported float64 TorchScript) of the bundled LiF MACE model."""
    from ionmd.models.export import export_model

    out = tmp_path_factory.mktemp("mace") / "lif_mace64.pt"
    export_model(BUNDLED_MACE_CHECKPOINT, out, dtype="float64")
    return BUNDLED_MACE_CHECKPOINT, out


@pytest.fixture(scope="session")
def mace_halo_float64(tmp_path_factory) -> Path:
    """The bundled LiF MACE model exported with ``--halo`` in float64."""
    from ionmd.models.export import export_model

    out = tmp_path_factory.mktemp("mace_halo") / "lif_mace_halo64.pt"
    export_model(BUNDLED_MACE_CHECKPOINT, out, dtype="float64", halo=True)
    return out


@pytest.fixture(scope="session")
def mace_calculator(mace_float64):
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(mace_float64[0]), device="cpu", default_dtype="float64")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def run_area_cli(register: Callable[[argparse._SubParsersAction], None], argv: list[str]) -> int:
    """Run ``ionmd`` with one area's sub-commands only (``register``), with the CLI's error handling.

    An :class:`~ionmd.errors.IonmdError` is printed as ``ionmd CMD: error: ...`` on stderr
    and gives exit status 2, as in :func:`ionmd.cli.main`.
    """
    from ionmd.errors import IonmdError

    parser = argparse.ArgumentParser(prog="ionmd")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except IonmdError as exc:
        print(f"ionmd {args.command}: error: {exc}", file=sys.stderr)
        return 2
