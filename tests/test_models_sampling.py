"""Tests of the LiF sampling recipe (ionmd.examples.lif.sampling) and of short-contact frames."""

from __future__ import annotations

import numpy as np
import pytest

from ionmd.errors import InputError
from ionmd.examples.lif.sampling import (
    SHORT_CONTACT_PAIRS_A,
    SamplingPlan,
    lif_cell,
    sample_lif_frames,
)


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


def test_short_contact_frames_place_one_pair_in_range_in_any_cell():
    """Each frame has exactly the requested pair at its drawn distance; the rest is unmoved.

    Checked on LiF and on a triclinic NaCl cell (another chemistry, minimum-image
    distances across a skewed cell).
    """
    from ase.build import bulk

    from ionmd.models.sampling import short_contact_frames

    nacl = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 2, 2))
    nacl.set_cell(nacl.cell @ np.array([[1.0, 0.05, 0.0], [0.0, 1.0, 0.08], [0.0, 0.0, 1.0]]),
                  scale_atoms=True)
    cases = [
        ([lif_cell("interstitial"), lif_cell("perfect")], SHORT_CONTACT_PAIRS_A,
         {("Li", "Li"): (1.0, 1.6), ("Li", "F"): (1.3, 1.8)}),
        ([nacl], {("Na", "Cl"): (1.6, 2.0), ("Cl", "Cl"): (2.2, 2.6)},
         {("Na", "Cl"): (1.6, 2.0), ("Cl", "Cl"): (2.2, 2.6)}),
    ]
    for sources, pairs, expect in cases:
        frames = short_contact_frames(sources, 12, pairs_A=pairs, seed=5)
        assert len(frames) == 12
        seen = set()
        for f in frames:
            label, d_text = f.info["short_contact"].split()
            a, b = label.split("-")
            seen.add((a, b))
            lo, hi = expect[(a, b)]
            target = float(d_text)
            assert lo <= target <= hi
            src = next(s for s in sources if len(s) == len(f))
            dfrac = (f.get_scaled_positions() - src.get_scaled_positions() + 0.5) % 1.0 - 0.5
            moved = np.linalg.norm(dfrac @ np.asarray(f.cell), axis=1)  # Å
            i, j = np.flatnonzero(moved > 1e-9)  # only the pushed pair moved
            assert sorted([f[i].symbol, f[j].symbol]) == sorted([a, b])
            assert f.get_distance(i, j, mic=True) == pytest.approx(target, abs=5e-4)
            # ...towards each other, symmetrically, along their bond.
            assert src.get_distance(i, j, mic=True) > target
            assert moved[i] == pytest.approx(moved[j], rel=1e-6)
        assert seen == set(expect)  # the pair types take turns


def test_short_contact_frames_errors_name_the_problem():
    from ionmd.models.sampling import short_contact_frames

    with pytest.raises(InputError, match="Na-Na"):
        short_contact_frames([lif_cell("perfect")], 2, pairs_A={("Na", "Na"): (1.0, 2.0)})
    with pytest.raises(InputError, match="Li-F"):
        short_contact_frames([lif_cell("perfect")], 2, pairs_A={("Li", "F"): (1.5, 1.0)})
