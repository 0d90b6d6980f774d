"""The bundled NMC811-like ordering (inputs/order/): composition, energy record, site lattice.

The files come from the documented CHGNet run (inputs/README.md, "Orderings"); these checks
need no CHGNet: they tie the bundled best ordering to its summary and to the lattice the
site analysis of its MD uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from ionmd.analysis.sites import find_sites, read_perfect
from ionmd.order.sublattice import build_problem, read_parent

ORDER = Path(__file__).resolve().parents[1] / "inputs" / "order"
BEST = ORDER / "nmc811_like_x0.75_chgnet_rank01.extxyz"
SITES = ORDER / "nmc811_like_x0.75_sites.extxyz"


def test_best_ordering_matches_its_summary():
    best = read(BEST)
    summary = json.loads((ORDER / "nmc811_like_x0.75_chgnet_summary.json").read_text())
    top = summary["top"][0]
    assert best.get_chemical_formula() == top["formula"] == "Co2Li15Mn2Ni16O40"
    assert best.info["ordering_key"] == top["key"] == summary["search"]["best_key"]
    assert best.info["energy_per_atom_eV"] == pytest.approx(summary["best_eV_atom"], abs=1e-9)
    assert summary["best_eV_atom"] < summary["random"]["min"]  # better than random sampling
    assert summary["random"]["n"] == summary["search"]["n_evaluations"]
    assert "not-converged" in summary["flags"] and summary["search"]["stop_reason"] == "budget"


def test_site_lattice_is_the_parent_lattice_and_gives_the_vacant_li_sites():
    pytest.importorskip("pymatgen")
    problem = build_problem(read_parent(ORDER / "nmc811_like_primitive.cif"), "5x4x1")
    lattice, bundled = problem.site_lattice(), read(SITES)
    assert bundled.get_chemical_formula() == lattice.get_chemical_formula() == "Li20Ni20O40"
    assert np.allclose(bundled.positions, lattice.positions, atol=1e-6)
    sites = find_sites(read_perfect(BEST), ["Li"], perfect=read_perfect(SITES))
    li = [s for s in sites.sublattices if s.kind == "L"]
    assert [(s.n_sites, s.n_occupied) for s in li] == [(20, 15)]
    assert sites.symmetry.spacegroup == "R-3m"
