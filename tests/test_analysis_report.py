"""Sweep report end to end on a synthetic hopping sweep with a known activation energy."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from ionmd.analysis.cli import register
from ionmd.analysis.report import sweep_mechanisms
from ionmd.analysis.synthetic import HopLattice, hopping_sweep
from ionmd.examples.lif.constants import LIF_A_ANGSTROM
from ionmd.examples.lif.structure import unit_cell

EA, NU = 0.5, 20.0  # eV, 1/ps
LIF = HopLattice.of(unit_cell(), "Li", (2, 2, 2))  # Li hopping a/2 <110> in rock-salt LiF


def test_report_recovers_Ea_from_D_and_from_hop_rates(tmp_path):
    sweep = hopping_sweep(tmp_path / "sw", (700.0, 850.0, 1000.0, 1200.0), (1, 2), EA, NU,
                          np.random.default_rng(3), lattice=LIF, n_frames=250)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(sweep), "--charges", "Li=1,F=-1"])
    assert args.func(args) == 0
    md = (sweep / "report.md").read_text()
    assert "## Activation energies" in md and "## Hop mechanisms" in md
    assert "<table>" in (sweep / "report.html").read_text()
    for png in ("arrhenius.png", "hops_toy.png", "msd_toy_700K.png"):
        assert (sweep / "report_files" / png).stat().st_size > 10_000
    rep = json.loads((sweep / "report.json").read_text())
    fit = rep["models"]["toy"]["arrhenius"]
    assert fit["Ea_ci95_eV"][0] < EA < fit["Ea_ci95_eV"][1]
    assert fit["Ea_ci95_eV"][1] - fit["Ea_ci95_eV"][0] < 0.3
    # D at each T against the exact lattice-walk value Gamma a^2 / 12
    kb = 8.617333262e-5
    for d in rep["models"]["toy"]["diffusion"]:
        gamma = NU * np.exp(-EA / (kb * d["T_K"]))
        truth = gamma * LIF_A_ANGSTROM**2 / 12 * 1e-4
        assert LIF.D_A2_ps(gamma) * 1e-4 == pytest.approx(truth)
        assert abs(d["D_cm2_s"] - truth) < 4 * d["D_err_cm2_s"], (d["T_K"], d["D_cm2_s"], truth)
        assert d["sigma_mS_cm"] > 0 and d["haven_ratio"] > 0
    # all hops are lattice-to-lattice; their rate follows the same Arrhenius law
    mech = rep["mechanisms"]["toy"]
    counts = {T: v["counts"] for T, v in mech["by_T"].items()}
    assert all(c["vacancy"] > 100 and c["interstitialcy"] == 0 for c in counts.values())
    ea = mech["arrhenius"]["vacancy"]
    assert ea["Ea_ci95_eV"][0] < EA < ea["Ea_ci95_eV"][1]
    # no interstitial hops here, so no interstitial jump-rate fit (rather than a fake one)
    assert mech["interstitial_jump_arrhenius"] is None


def test_sweep_mechanisms_notes_missing_reference(tmp_path):
    sweep = hopping_sweep(tmp_path / "sw", (900.0,), (1,), EA, NU, np.random.default_rng(4), lattice=LIF,
                          n_frames=60)
    (sweep / "structure.data").unlink()
    mech, notes = sweep_mechanisms(sweep, None, None)
    assert mech == {} and "no reference data file" in notes[0]
