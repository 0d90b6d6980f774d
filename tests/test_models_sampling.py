"""Tests of the LiF frame sampler (ionmd.models.sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from ionmd.models.sampling import SamplingPlan, lif_cell, sample_lif_frames


@pytest.mark.parametrize(
    ("kind", "n_li", "n_f"),
    [("perfect", 32, 32), ("interstitial", 33, 32), ("li_vacancy", 31, 32), ("schottky", 31, 31)],
)
def test_lif_cell_compositions(kind, n_li, n_f):
    syms = lif_cell(kind).get_chemical_symbols()
    assert (syms.count("Li"), syms.count("F")) == (n_li, n_f)


def test_interstitial_sits_at_the_tetrahedral_site():
    atoms = lif_cell("interstitial")
    d = atoms.get_distances(len(atoms) - 1, range(len(atoms) - 1), mic=True)
    # Tetrahedral site of rock salt: 4 Li and 4 F at a*sqrt(3)/4 = 1.745 Å.
    assert np.sum(np.isclose(d, 4.03 * np.sqrt(3) / 4, atol=1e-6)) == 8
    assert d.min() == pytest.approx(4.03 * np.sqrt(3) / 4)


def test_sampled_frames_are_thermal_and_strained():
    plan = SamplingPlan(
        kinds={"interstitial": 1.0},
        temperatures_K=(300.0, 1100.0),
        frames_per_run=3,
        stride=50,
        equil=200,
        strain_sigma=0.01,
        rattle_A=(0.0, 0.0),
    )
    raw = sample_lif_frames(6, plan, seed=1, perturb=False)
    assert [f.info["T_K"] for f in raw] == [300.0] * 3 + [1100.0] * 3
    msd = []
    for f in raw:
        # Mean-square displacement from the (thermally expanded) lattice grows with temperature.
        ref = lif_cell("interstitial", a_A=f.cell[0, 0] / 2)
        d = f.get_scaled_positions() - ref.get_scaled_positions()
        d -= np.round(d)
        msd.append(np.mean(np.sum((d @ np.asarray(f.cell)) ** 2, axis=1)))
    assert np.mean(msd[3:]) > 1.5 * np.mean(msd[:3])
    # Classical forces are kept for fixtures and sum to ~zero (Newton's third law).
    assert np.abs(raw[0].arrays["classical_forces"].sum(axis=0)).max() < 1e-3
    strained = sample_lif_frames(6, plan, seed=1)
    for f in strained:
        assert "classical_forces" not in f.arrays
        eps = np.array(f.info["strain"].split(), dtype=float)
        assert np.abs(eps).max() < 0.06 and np.abs(eps).max() > 0.0
