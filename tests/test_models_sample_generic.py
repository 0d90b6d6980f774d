"""Tests of the generic sampler (ionmd.models.sampling, ``ionmd sample``) with ASE's EMT on Cu3Au."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.geometry import find_mic, get_distances
from ase.io import read, write

from ionmd.driver.structure import build_with_records
from ionmd.errors import InputError
from ionmd.models.sampling import (
    SampleCell,
    SamplePlan,
    contact_ranges_A,
    hop_frames,
    hop_targets,
    nearest_pair_distances_A,
    sample_frames,
    sample_structure,
    short_contact_frames,
)

A_CU3AU = 3.75
REPO = Path(__file__).resolve().parents[1]


def cu3au() -> Atoms:
    """L1_2 Cu3Au: Au at the cube corners, Cu at the face centres."""
    frac = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    return Atoms("AuCu3", scaled_positions=frac, cell=np.eye(3) * A_CU3AU, pbc=True)


@pytest.fixture()
def cif(tmp_path) -> Path:
    path = tmp_path / "cu3au.cif"
    write(path, cu3au())
    return path


PLAN = SamplePlan(n_rattle=2, temperatures_K=(400.0,), md_frames_per_T=2, md_stride=5,
                  md_equil=5, hop_images=3, max_hops=2, n_short=4)


def test_nearest_pair_distances_and_contact_ranges():
    d = nearest_pair_distances_A(cu3au().repeat(2))
    nn = A_CU3AU / np.sqrt(2)
    assert d[("Au", "Cu")] == pytest.approx(nn)
    assert d[("Cu", "Cu")] == pytest.approx(nn)
    assert d[("Au", "Au")] == pytest.approx(A_CU3AU)   # Au only at the corners
    ranges = contact_ranges_A(cu3au().repeat(2), (0.5, 0.8))
    assert ranges[("Au", "Au")] == pytest.approx((0.5 * A_CU3AU, 0.8 * A_CU3AU))
    # One Au per unit cell: its own images are no pair that can be pushed together.
    assert ("Au", "Au") not in contact_ranges_A(cu3au())
    with pytest.raises(InputError, match="0 < lo <= hi < 1"):
        contact_ranges_A(cu3au(), (0.9, 0.5))


def test_sample_frames_counts_tags_hops_and_contacts(cif):
    base = build_with_records(cif, 2)
    vac = build_with_records(cif, 2, remove=["Cu"], seed=3)
    inter = build_with_records(cif, 2, add=["Cu@void"], seed=3)
    cells = [SampleCell("perfect", base.perfect),
             SampleCell("vacancy", vac.atoms, vac.records),
             SampleCell("interstitial", inter.atoms, inter.records)]
    frames = sample_frames(base.perfect, cells, EMT(), PLAN, seed=2)
    kinds = [f.info["config_type"] for f in frames]
    # 3 cells x 2 rattles, 3 cells x 1 T x 2 MD frames, 2 defects x 2 hops x 3 images, 4 contacts
    assert {k: kinds.count(k) for k in set(kinds)} == \
        {"rattle": 6, "md": 6, "hop": 12, "short_contact": 4}
    assert {f.info["cell_kind"] for f in frames} == {"perfect", "vacancy", "interstitial"}
    by_cell = {c.name: c.atoms for c in cells}

    # Hop frames: the moving atom lies on the straight line start -> end; nothing else moved.
    nn = A_CU3AU / np.sqrt(2)
    for f in (f for f in frames if f.info["config_type"] == "hop"):
        src = by_cell[f.info["cell_kind"]]
        i, t = f.info["hop_atom"], f.info["hop_t"]
        start = np.asarray(f.info["hop_start_A"], dtype=float)
        end = np.asarray(f.info["hop_end_A"], dtype=float)
        step, _ = find_mic(f.positions[i] - start, f.cell, pbc=True)
        assert np.allclose(step, t * (end - start), atol=1e-6)
        assert 0 < t < 1
        others = np.delete(np.arange(len(f)), i)
        assert np.allclose(f.positions[others], src.positions[others], atol=1e-9)
        if f.info["cell_kind"] == "vacancy":
            # a Cu neighbour hops into the vacant Cu site, a/sqrt(2) away
            assert np.linalg.norm(end - start) == pytest.approx(nn, abs=1e-6)
            assert np.allclose(find_mic(end - np.array(vac.records[0].cart_A), f.cell)[0], 0,
                               atol=1e-6)
            assert f[i].symbol == "Cu"
        else:
            assert i == inter.records[0].index
            # the end is a void of the perfect cell, as far from its atoms as the start
            _, d_end = get_distances(end[None], base.perfect.positions, cell=f.cell, pbc=True)
            assert d_end.min() == pytest.approx(inter.records[0].nearest_A, abs=1e-6)

    # Short contacts: the pushed pair sits at its target, inside the range derived from the
    # perfect cell's own nearest-neighbour distance of that pair.
    ranges = contact_ranges_A(base.perfect)
    for f in (f for f in frames if f.info["config_type"] == "short_contact"):
        label, target = f.info["short_contact"].split()
        pair = tuple(label.split("-"))
        lo, hi = ranges[pair]
        assert lo <= float(target) <= hi
        assert lo == pytest.approx(0.6 * nearest_pair_distances_A(base.perfect)[pair])
        i, j = (int(k) for k in f.info["short_contact_atoms"].split())
        assert (f[i].symbol, f[j].symbol) == pair
        assert f.get_distance(i, j, mic=True) == pytest.approx(float(target), abs=5e-4)
        # ... and no other contact is that short: every pair stays above its range's floor.
        d = f.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        d[i, j] = d[j, i] = np.inf
        assert d.min() > min(lo for lo, _ in ranges.values()) - 0.2

    # MD frames are thermal, not copies of the start.
    for f in (f for f in frames if f.info["config_type"] == "md"):
        assert f.info["T_K"] == 400.0
        start = by_cell[f.info["cell_kind"]]
        disp, _ = find_mic(f.positions - start.positions, f.cell, pbc=True)
        assert 0.01 < np.sqrt(np.mean(np.sum(disp**2, axis=1))) < 0.5


def test_hop_targets_of_a_vacancy_are_its_nearest_neighbours(cif):
    vac = build_with_records(cif, 2, remove=["Cu"], seed=1)
    hops = hop_targets(vac.atoms, vac.records[0], np.zeros((0, 3)), cutoff_factor=1.2,
                       max_hops=20)
    # A Cu site of L1_2 has 8 Cu (and 4 Au) nearest neighbours at a/sqrt(2).
    assert len(hops) == 8
    frames = hop_frames(vac.atoms, hops, n_images=1)
    assert all(f.info["hop_t"] == 0.5 for f in frames)


def test_sample_structure_labelled_output_feeds_fit_and_learn(tmp_path, cif):
    from ionmd.learn.dataset import split_initial
    from ionmd.models.fit import load_labelled

    out = tmp_path / "frames.extxyz"
    result = sample_structure(out, cif, supercell=2, mobile=["Cu"], calculator="emt", plan=PLAN,
                              seed=0, label=True)
    assert result.labelled and result.calculator == "emt" and not result.flags
    assert result.cells == ["perfect", "vacancy Cu", "interstitial Cu@void"]
    assert [d["kind"] for d in result.defects] == ["vacancy", "interstitial"]
    frames = load_labelled(out)
    assert len(frames) == result.n_frames == sum(result.counts.values())
    assert all(np.isfinite(f.get_potential_energy()) for f in frames)
    assert (tmp_path / "frames.extxyz.e0.json").is_file()
    # The tags survive the file: hop frames read back still lie on their lines.
    hops = [f for f in frames if f.info["config_type"] == "hop"]
    assert len(hops) == result.counts["hop"] > 0
    for f in hops:
        start, end = np.asarray(f.info["hop_start_A"]), np.asarray(f.info["hop_end_A"])
        step, _ = find_mic(f.positions[f.info["hop_atom"]] - start, f.cell, pbc=True)
        assert np.allclose(step, f.info["hop_t"] * (end - start), atol=1e-5)
    train, _ = split_initial({"initial": out, "initial_seed": 0, "initial_count": 5,
                              "test": None, "test_count": 3})
    assert len(train) == 5


def test_sample_without_calculator_is_flagged_and_unlabelled(tmp_path, cif):
    out = tmp_path / "u.extxyz"
    result = sample_structure(out, cif, supercell=1, calculator="none", plan=PLAN,
                              vacancies=["Au"], interstitials=[])
    assert "md" not in result.counts
    assert any(f.startswith("no_md") for f in result.flags)
    frames = read(out, ":")
    assert all(f.calc is None for f in frames)
    with pytest.raises(InputError, match="--label needs a calculator"):
        sample_structure(out, cif, calculator="none", plan=PLAN, label=True)
    with pytest.raises(InputError, match="mobile species 'Li' is not in the structure"):
        sample_structure(out, cif, mobile=["Li"], calculator="none")
    with pytest.raises(InputError, match="n_rattle must be a non-negative integer"):
        sample_structure(out, cif, calculator="none", plan=SamplePlan(n_rattle=-1))


def test_short_contact_defaults_come_from_the_first_frame():
    frames = short_contact_frames([cu3au().repeat(2)], 6, seed=3)
    ranges = contact_ranges_A(cu3au().repeat(2))
    for f in frames:
        label, target = f.info["short_contact"].split()
        lo, hi = ranges[tuple(label.split("-"))]
        assert lo <= float(target) <= hi


def test_cli_sample(tmp_path, cif):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "c.extxyz"
    cmd = [sys.executable, "-m", "ionmd", "sample", str(cif), "-o", str(out), "--calculator", "emt",
           "--temperatures", "300", "--md-frames", "1", "--rattle", "1", "--short", "2",
           "--max-hops", "1", "--hop-images", "2", "--mobile", "Cu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["counts"] == {"rattle": 3, "md": 3, "hop": 4, "short_contact": 2}
    assert len(read(out, ":")) == 12
    bad = subprocess.run(cmd + ["--temperatures", "hot"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2 and "--temperatures 'hot'" in bad.stderr
