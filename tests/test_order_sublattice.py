"""ionmd order: CIF partial occupancies, composition targets and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from ionmd.cli import main
from ionmd.errors import InputError
from ionmd.order.sublattice import build_problem, read_parent

pytest.importorskip("pymatgen")

# A layered R-3m cell (3 formula units): Li layer at 3/4 occupancy, TM layer 0.8/0.1/0.1.
LAYERED_CIF = """data_layered
_cell_length_a 2.87
_cell_length_b 2.87
_cell_length_c 14.2
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
_symmetry_space_group_name_H-M 'R -3 m'
_symmetry_Int_Tables_number 166
loop_
_symmetry_equiv_pos_as_xyz
x,y,z
-y,x-y,z
-x+y,-x,z
y,x,-z
x-y,-y,-z
-x,-x+y,-z
-x,-y,-z
y,-x+y,-z
x-y,x,-z
-y,-x,z
-x+y,y,z
x,x-y,z
x+2/3,y+1/3,z+1/3
-y+2/3,x-y+1/3,z+1/3
-x+y+2/3,-x+1/3,z+1/3
y+2/3,x+1/3,-z+1/3
x-y+2/3,-y+1/3,-z+1/3
-x+2/3,-x+y+1/3,-z+1/3
-x+2/3,-y+1/3,-z+1/3
y+2/3,-x+y+1/3,-z+1/3
x-y+2/3,x+1/3,-z+1/3
-y+2/3,-x+1/3,z+1/3
-x+y+2/3,y+1/3,z+1/3
x+2/3,x-y+1/3,z+1/3
x+1/3,y+2/3,z+2/3
-y+1/3,x-y+2/3,z+2/3
-x+y+1/3,-x+2/3,z+2/3
y+1/3,x+2/3,-z+2/3
x-y+1/3,-y+2/3,-z+2/3
-x+1/3,-x+y+2/3,-z+2/3
-x+1/3,-y+2/3,-z+2/3
y+1/3,-x+y+2/3,-z+2/3
x-y+1/3,x+2/3,-z+2/3
-y+1/3,-x+2/3,z+2/3
-x+y+1/3,y+2/3,z+2/3
x+1/3,x-y+2/3,z+2/3
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Li1 Li 0 0 0.5 0.75
Ni1 Ni 0 0 0 0.8
Mn1 Mn 0 0 0 0.1
Co1 Co 0 0 0 0.1
O1 O 0 0 0.25 1.0
"""


@pytest.fixture()
def layered_cif(tmp_path):
    path = tmp_path / "layered.cif"
    path.write_text(LAYERED_CIF)
    return path


def test_cif_partial_occupancies(layered_cif):
    parent = read_parent(layered_cif)
    assert sorted(parent.labels()) == ["Li", "Ni", "O"]
    tm = [s for s in parent.sites if s.label == "Ni"]
    li = [s for s in parent.sites if s.label == "Li"]
    assert len(tm) == 3 and len(li) == 3
    assert tm[0].occupancy == pytest.approx({"Ni": 0.8, "Mn": 0.1, "Co": 0.1})
    assert li[0].occupancy == pytest.approx({"Li": 0.75, "X": 0.25})
    # 20 cells: 60 Li sites (multiple of 4) and 60 TM sites (multiple of 10).
    prob = build_problem(parent, "5x4x1")
    subs = {s.name: s for s in prob.sublattices}
    assert subs["Ni"].counts == {"Ni": 48, "Mn": 6, "Co": 6}
    assert subs["Li"].counts == {"Li": 45, "X": 15}
    atoms = prob.atoms(prob.reference_occupation())
    counts = {s: atoms.get_chemical_symbols().count(s) for s in set(atoms.get_chemical_symbols())}
    assert counts == {"Li": 45, "Ni": 48, "Mn": 6, "Co": 6, "O": 120}
    # An explicit target overrides the CIF's Li occupancy.
    prob = build_problem(parent, "5x4x1", ["Li=Li:0.5,Vac:0.5"])
    assert {s.name: s.counts for s in prob.sublattices}["Li"] == {"Li": 30, "X": 30}


def test_impossible_composition_names_sublattice_fractions_and_sites(layered_cif):
    parent = read_parent(layered_cif)
    with pytest.raises(InputError) as err:
        build_problem(parent, "2x2x1")  # 12 TM sites cannot hold 80/10/10
    msg = str(err.value)
    assert "'Ni'" in msg and "Ni=0.8" in msg and "Mn=0.1" in msg and "12" in msg
    assert "multiple of 10" in msg


def test_targets_on_an_ordered_structure(tmp_path):
    path = tmp_path / "sc.extxyz"
    write(path, Atoms("Cu", cell=[2.0] * 3, pbc=True))
    parent = read_parent(path)
    prob = build_problem(parent, "2x2x2", ["Cu=Cu:3,Au:5"])  # counts
    assert prob.sublattices[0].counts == {"Cu": 3, "Au": 5}
    prob = build_problem(parent, "2x2x2", ["Cu=Cu:1/4,Au:0.5,X:0.25"])  # fractions
    assert prob.sublattices[0].counts == {"Cu": 2, "Au": 4, "X": 2}
    assert len(prob.atoms(prob.reference_occupation())) == 6
    bad = {
        "Cu=Cu:0.5,Au:0.4": "sum to 0.9000",
        "Cu=Cu:3,Au:4": "sum to 7",
        "Fe=Fe:0.5,Au:0.5": "no site labelled 'Fe'",
        "Cu=Cu:0.5,Qq:0.5": "unknown element 'Qq'",
        "Cu=Cu:0.3,Au:0.7": "multiple of 10",
        "Cu:0.5,Au:0.5": "expected LABEL=SP:VALUE",
    }
    for spec, text in bad.items():
        with pytest.raises(InputError, match=text):
            build_problem(parent, "2x2x2", [spec])
    with pytest.raises(InputError, match="nothing to search"):
        build_problem(parent, 2)


def test_cli_impossible_composition_exit_2(tmp_path, capsys, layered_cif):
    rc = main(["order", str(layered_cif), "--supercell", "1", "--energy", "emt",
               "-o", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error: sublattice" in err
    assert ("3 Li sites" in err) or ("3 Ni sites" in err)


def test_composition_check_catches_a_broken_occupation(tmp_path):
    path = tmp_path / "sc.extxyz"
    write(path, Atoms("Cu", cell=[2.0] * 3, pbc=True))
    prob = build_problem(read_parent(path), 2, ["Cu=Cu:0.5,Au:0.5"])
    occ = prob.reference_occupation()
    prob.check_composition(occ)
    occ = occ.copy()
    occ[:] = occ[0]
    with pytest.raises(InputError, match="target 4"):
        prob.check_composition(occ)
    assert np.all(prob.searched == np.arange(8))
