"""Knock-off (interstitialcy) NEB for any structure: candidates, symmetry types, end points, barrier.

Counts are checked against hand-counted answers: in rock salt the 8 tetrahedral sites
around a cation give 7 knock-offs of 3 types (collinear 180°: 1; 109.5°: 3; 70.5°: 3);
in fcc the 6 octahedral sites around an atom give 5 knock-offs of 2 types (180°: 1;
90°: 4). The generic LiF end points equal the built-in ``knockoff`` case's atom by atom,
and with the bundled MACE model the generic band gives the built-in case's barrier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from ionmd.errors import InputError
from ionmd.examples.lif.neb_cases import LIF_A_A, lif_case, run_case
from ionmd.neb.concerted import (
    KNOCKOFF_KIND,
    concerted_barrier,
    concerted_endpoints,
    knockoff_candidates,
    knockoff_types,
    knockoff_types_of_class,
)
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.result import NEBResult

ROCKSALT = bulk("LiF", "rocksalt", a=LIF_A_A, cubic=True)  # cation (0,0,0), anion (0.5,0,0)
TETRA = (0.25, 0.25, 0.25)
MACE = Path(__file__).resolve().parents[1] / "inputs" / "models" / "lif_mace.pt"


def test_rock_salt_knockoffs_seven_candidates_three_types():
    cands = knockoff_candidates(ROCKSALT, TETRA, (0, 0, 0))
    assert len(cands) == 7
    for c in cands:  # all at the L-I distance a*sqrt(3)/4 from l, none is a itself
        v = (c.end_frac - c.lattice_frac) @ ROCKSALT.cell.array
        assert np.linalg.norm(v) == pytest.approx(LIF_A_A * np.sqrt(3) / 4, abs=1e-9)
        assert not np.allclose(c.end_frac, c.interstitial_frac)
    types = knockoff_types(ROCKSALT, TETRA, (0, 0, 0), "Li(1)", "i(1)")
    assert [len(t.members) for t in types] == [1, 3, 3]
    assert [round(t.angle_deg, 2) for t in types] == [180.0, 109.47, 70.53]
    assert [t.label for t in types] == [
        "knock-off Li(1) via i(1), 180°", "knock-off Li(1) via i(1), 109°",
        "knock-off Li(1) via i(1), 71°"]
    assert np.allclose(types[0].representative.end_frac, [-0.25, -0.25, -0.25])


def test_fcc_octahedral_knockoffs_two_types_and_supercell_invariance():
    fcc = bulk("Cu", "fcc", a=3.615, cubic=True)
    types = knockoff_types(fcc, (0.5, 0, 0), (0, 0, 0))
    assert [(len(t.members), round(t.angle_deg)) for t in types] == [(1, 180), (4, 90)]
    # a supercell reference (as the study passes) gives the same types, in its own fractions
    big = knockoff_types(fcc.repeat(2), (0.25, 0, 0), (0, 0, 0))
    assert [(len(t.members), round(t.angle_deg)) for t in big] == [(1, 180), (4, 90)]


def test_hcp_octahedral_knockoffs_no_collinear_type():
    """hcp (no inversion at the atom): 5 candidates, 131° (2), 91° (2), 69° (1, straight below).

    Hand count: the 6 octahedral sites around an atom sit at ±c/4 and a/sqrt(3) in plane;
    cos(a-l-b) = (a²/3 cos φ ± c²/16) / (a²/3 + c²/16) for in-plane angle φ of 0° or 120°.
    """
    a_A, c_A = 3.23, 5.15
    zr = bulk("Zr", "hcp", a=a_A, c=c_A)  # atoms at (0,0,0), (1/3,2/3,1/2)
    types = knockoff_types(zr, (2 / 3, 1 / 3, 1 / 4), (0, 0, 0))
    r2, z2 = a_A**2 / 3, c_A**2 / 16
    want = [np.degrees(np.arccos((-r2 / 2 - z2) / (r2 + z2))),
            np.degrees(np.arccos((-r2 / 2 + z2) / (r2 + z2))),
            np.degrees(np.arccos((r2 - z2) / (r2 + z2)))]
    assert [len(t.members) for t in types] == [2, 2, 1]
    assert np.allclose([t.angle_deg for t in types], want)
    assert all(t.hop_length_A == pytest.approx(np.sqrt(r2 + z2)) for t in types)
    ep = concerted_endpoints(zr, types[0].representative, repeat=(4, 4, 3))
    assert len(ep.initial) == 97


def test_hop_class_mapping_either_direction_and_bad_classes():
    cls = {"label": "Li(1)-i(1) 1.75 Å", "from_kind": "I", "to_kind": "L",
           "from_sublattice": "i(1)", "to_sublattice": "Li(1)",
           "start_frac": [0.25, 0.25, 0.25], "end_frac": [1.0, 0.0, 1.0]}
    types = knockoff_types_of_class(ROCKSALT, cls)
    assert [len(t.members) for t in types] == [1, 3, 3]
    assert types[0].label == "knock-off Li(1) via i(1), 180°"
    with pytest.raises(InputError, match="needs an L-I class"):
        knockoff_types_of_class(ROCKSALT, cls | {"from_kind": "L"})
    with pytest.raises(InputError, match="is occupied in the perfect reference"):
        knockoff_candidates(ROCKSALT, (0.5, 0, 0), (0, 0, 0))  # an anion, not an interstitial


@pytest.mark.parametrize("n_cells", [2, 3])
def test_generic_end_points_equal_the_builtin_lif_knockoff(n_cells):
    t = knockoff_types(ROCKSALT, TETRA, (0, 0, 0))[0]
    ep = concerted_endpoints(ROCKSALT, t.representative, species="Li", repeat=(n_cells,) * 3)
    initial, final = lif_case("knockoff", n_cells)
    assert len(ep.initial) == len(ep.final) == 8 * n_cells**3 + 1
    assert ep.initial.get_chemical_symbols() == initial.get_chemical_symbols()
    assert np.allclose(ep.initial.positions, initial.positions)
    assert np.allclose(ep.final.positions, final.positions)
    moved = np.flatnonzero(np.linalg.norm(ep.final.positions - ep.initial.positions, axis=1) > 1e-9)
    assert sorted(moved) == sorted([ep.interstitial_atom, ep.lattice_atom])
    assert ep.hop_length_A == pytest.approx(ep.partner_length_A)


def test_every_type_gives_valid_end_points_and_bad_ones_are_named():
    for t in knockoff_types(ROCKSALT, TETRA, (0, 0, 0)):
        ep = concerted_endpoints(ROCKSALT, t.representative, repeat=(2, 2, 2))
        for at in (ep.initial, ep.final):
            d = at.get_all_distances(mic=True)[np.triu_indices(len(at), 1)]
            assert d.min() > 1.4  # no overlap: the closest pair is an interstitial-neighbour one
            assert at.get_chemical_symbols().count("Li") == 33
    rep = knockoff_types(ROCKSALT, TETRA, (0, 0, 0))[0].representative
    with pytest.raises(InputError, match="holds Li, not the interstitial's F"):
        concerted_endpoints(ROCKSALT, rep, species="F", repeat=(2, 2, 2))
    with pytest.raises(InputError, match="not less than half the cell width"):
        concerted_endpoints(ROCKSALT, rep)


def test_generic_knockoff_barrier_equals_the_builtin_case_mace(tmp_path):
    """Bundled MACE, 2x2x2 LiF (65 atoms), 3 images: generic band vs the built-in case."""
    from test_neb_lif_mlip import _skip_unless_runnable

    _skip_unless_runnable(MACE)
    kw = {"ftol_eV_A": 0.05, "n1_steps": 200, "n2_steps": 200}
    ref = run_case(MACE, "knockoff", tmp_path / "builtin", n_cells=2, n_images=3,
                   ftol_eV_A=kw["ftol_eV_A"], n_steps=kw["n1_steps"],
                   climb_steps=kw["n2_steps"], timeout_s=600)
    t = knockoff_types(ROCKSALT, TETRA, (0, 0, 0), "Li(1)", "i(1)")[0]
    r = concerted_barrier(ROCKSALT, t.representative, Potential.from_model(MACE, ["Li", "F"]),
                          tmp_path / "generic", species="Li", repeat=(2, 2, 2), n_images=3,
                          settings=NEBSettings(**kw), timeout_s=600, hop_type=t.index)
    assert ref.converged and r.converged, (ref.summary(), r.summary())
    assert 0.0 < r.barrier_forward_eV < 1.0
    assert r.barrier_forward_eV == pytest.approx(ref.barrier_forward_eV, abs=3e-3)
    back = NEBResult.read_json(tmp_path / "generic" / "neb.json")
    ep = concerted_endpoints(ROCKSALT, t.representative, repeat=(2, 2, 2))
    assert back.hop.kind == KNOCKOFF_KIND and back.hop.partner_atom == ep.lattice_atom
    assert back.hop.moving_atom == 64 and back.hop.partner_end_frac == [-0.25, -0.25, -0.25]


class _Progress:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def _lif_classes():
    """An L-I and an I-I class as the analysis hands them over, in a 3x3x3 reference."""
    li_i = {"label": "Li(1)-i(1) 1.75 Å", "from_kind": "L", "to_kind": "I",
            "from_sublattice": "Li(1)", "to_sublattice": "i(1)",
            "start_frac": [0.0, 0.0, 0.0], "end_frac": [1 / 12, 1 / 12, 1 / 12]}
    i_i = {"label": "i(1)-i(1) 2.02 Å", "from_kind": "I", "to_kind": "I",
           "from_sublattice": "i(1)", "to_sublattice": "i(1)",
           "start_frac": [1 / 12, 1 / 12, 1 / 12], "end_frac": [0.25, 1 / 12, 1 / 12]}
    return li_i, i_i


def test_study_jobs_replace_an_li_class_by_its_knockoffs():
    from ionmd.study.stages import knockoff_jobs

    li_i, i_i = _lif_classes()
    ref = ROCKSALT.repeat(3)
    jobs = knockoff_jobs([("mace", li_i), ("mace", i_i)], ref, 4, _Progress())
    labels = [j["label"] for _, j in jobs]
    assert labels == ["Li(1)-i(1) 1.75 Å: knock-off Li(1) via i(1), 180°", "i(1)-i(1) 2.02 Å",
                      "Li(1)-i(1) 1.75 Å: knock-off Li(1) via i(1), 109°",
                      "Li(1)-i(1) 1.75 Å: knock-off Li(1) via i(1), 71°"]
    ko = jobs[0][1]["knockoff"]
    assert ko.label == labels[0]
    assert np.allclose((ko.end_frac - ko.lattice_frac) * 3, [-0.25] * 3)  # collinear, [111]
    # the cap keeps every class (its most collinear knock-off) before the other types
    capped = knockoff_jobs([("mace", li_i), ("mace", i_i)], ref, 2, _Progress())
    assert [j["label"] for _, j in capped] == labels[:2]
    # a class whose 'interstitial' end is occupied stays a single-atom band, with a message
    p = _Progress()
    bad = li_i | {"end_frac": [1 / 6, 0.0, 0.0]}  # an F site
    assert knockoff_jobs([("mace", bad)], ref, 4, p) == [("mace", bad)]
    assert "no knock-off" in p.messages[0]


def test_study_table_lists_knockoffs_under_their_class(tmp_path):
    from types import SimpleNamespace

    from ionmd.study.stages import hop_barrier_table

    li_i, _ = _lif_classes()
    cfg = SimpleNamespace(models=[SimpleNamespace(label="mace")])
    analysis = SimpleNamespace(hop_classes={"mace": [li_i | {"count": 40}]}, report={})
    files = [tmp_path / "mace" / "00_a" / "neb.json", tmp_path / "mace" / "01_b" / "neb.json"]
    res = [{"hop": {"label": f"{li_i['label']}: knock-off Li(1) via i(1), 180°"},
            "barrier_forward_eV": 0.1504, "flags": []},
           {"hop": {"label": f"{li_i['label']}: knock-off Li(1) via i(1), 109°"},
            "barrier_forward_eV": None, "converged": False, "flags": ["not_converged"]}]
    rows = [r for r in hop_barrier_table(cfg, analysis, files, res) if r.startswith("| mace")]
    assert rows[0].startswith("| mace | Li(1)-i(1) 1.75 Å | 40 |")
    assert rows[1] == "| mace | ↳ knock-off Li(1) via i(1), 180° | | | 0.150 | – |"
    assert rows[2].startswith("| mace | ↳ knock-off Li(1) via i(1), 109° |")
    assert "0." not in rows[2] and "not_converged" in rows[2]
