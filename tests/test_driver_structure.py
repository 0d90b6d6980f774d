"""Tests of ``ionmd structure``: rock-salt LiF, defects, ASE files, triclinic cells, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.geometry import get_distances
from ase.io import read, write

from ionmd.driver.structure import (
    lammps_box,
    make_structure,
    parse_supercell,
    read_type_map,
)
from ionmd.errors import InputError
from ionmd.examples.lif.constants import LIF_A_ANGSTROM

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _read(path: Path):
    return read(path, format="lammps-data", atom_style="atomic", units="metal")


def test_lif_supercell_round_trips_through_ase(tmp_path):
    out = tmp_path / "lif.data"
    result = make_structure(out, supercell=2)
    assert result.n_atoms == 64
    assert result.counts == {"Li": 32, "F": 32}
    atoms = _read(out)
    symbols = atoms.get_chemical_symbols()
    assert symbols.count("Li") == 32 and symbols.count("F") == 32
    assert np.allclose(atoms.cell.lengths(), 2 * LIF_A_ANGSTROM)
    # Rock salt: every ion has 6 unlike nearest neighbours at a/2.
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    assert np.allclose(d.min(axis=1), LIF_A_ANGSTROM / 2, atol=1e-6)
    li = np.array(symbols) == "Li"
    assert np.all(np.sum(np.isclose(d[li][:, ~li], LIF_A_ANGSTROM / 2), axis=1) == 6)


def test_header_has_type_map_and_pair_coeff(tmp_path):
    out = tmp_path / "lif.data"
    result = make_structure(out, supercell=1)
    lines = out.read_text().splitlines()
    assert "type_map: 1=Li 2=F" in lines[0]
    assert result.pair_coeff == "pair_coeff * * Li F"
    assert "pair_coeff * * Li F" in lines[1]
    masses = lines[lines.index("Masses") + 2: lines.index("Masses") + 4]
    assert masses[0].endswith("# Li") and masses[1].endswith("# F")
    assert read_type_map(out) == {1: "Li", 2: "F"}
    # Fallback: a file without the header line still maps types by Masses comments.
    stripped = tmp_path / "noheader.data"
    stripped.write_text("\n".join(["# plain"] + lines[1:]) + "\n")
    assert read_type_map(stripped) == {1: "Li", 2: "F"}


def test_custom_type_order(tmp_path):
    result = make_structure(tmp_path / "fl.data", types=["F", "Li"])
    assert result.type_map == {1: "F", 2: "Li"}
    atoms = _read(tmp_path / "fl.data")
    assert atoms.get_chemical_symbols().count("Li") == 4


def test_li_interstitial_sits_in_a_tetrahedral_site(tmp_path):
    out = tmp_path / "int.data"
    a = 4.03
    result = make_structure(out, supercell=2, add=["Li@interstitial"], seed=3)
    assert result.counts == {"Li": 33, "F": 32}
    atoms = _read(out)
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    # A tetrahedral site has 4 Li and 4 F at sqrt(3)/4 a; no lattice ion has more than one
    # such contact, so the added atom is the one with eight.
    contacts = np.isclose(d, np.sqrt(3) / 4 * a, atol=1e-6)
    new = int(np.argmax(contacts.sum(axis=1)))
    assert d[new].min() == pytest.approx(np.sqrt(3) / 4 * a, abs=1e-6)
    near = contacts[new]
    syms = np.array(atoms.get_chemical_symbols())
    assert near.sum() == 8
    assert (syms[near] == "Li").sum() == 4 and (syms[near] == "F").sum() == 4


def test_vacancy_and_seeded_choice(tmp_path):
    r1 = make_structure(tmp_path / "v1.data", supercell=2, remove=["Li"], seed=1)
    make_structure(tmp_path / "v2.data", supercell=2, remove=["Li"], seed=1)
    assert r1.counts == {"Li": 31, "F": 32}
    assert (tmp_path / "v1.data").read_text().splitlines()[3:] == \
        (tmp_path / "v2.data").read_text().splitlines()[3:]
    lattice = make_structure(tmp_path / "full.data", supercell=2)
    assert lattice.n_atoms - r1.n_atoms == 1


def test_lattice_constant_override_and_fractional_site(tmp_path):
    result = make_structure(tmp_path / "a.data", a_A=4.2, add=["F@0.25,0.25,0.25"])
    assert np.allclose(np.diag(result.cell_A), 4.2)
    assert result.counts == {"Li": 4, "F": 5}


def test_ase_file_with_supercell_and_defect(tmp_path):
    src = tmp_path / "nacl.cif"
    write(src, bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    result = make_structure(tmp_path / "nacl.data", source=src, supercell="2x1x1",
                            remove=["Cl"], add=["Na@0.25,0.25,0.25"], seed=2)
    assert result.counts == {"Na": 9, "Cl": 7}
    atoms = _read(tmp_path / "nacl.data")
    assert atoms.get_chemical_symbols().count("Cl") == 7
    assert np.allclose(atoms.cell.lengths(), [11.28, 5.64, 5.64])


def _lj_energy_ase(atoms) -> float:
    calc = LennardJones(sigma=1.2, epsilon=0.1, rc=5.0, smooth=False)
    atoms = atoms.copy()
    atoms.calc = calc
    return float(atoms.get_potential_energy())


@pytest.mark.parametrize("case", ["fcc_primitive", "monoclinic_large_tilt"])
def test_triclinic_round_trip(tmp_path, case):
    if case == "fcc_primitive":
        atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    else:
        from ase import Atoms

        rng = np.random.default_rng(7)
        cell = np.array([[6.0, 0.0, 0.0], [4.5, 5.5, 0.0], [-3.9, 2.0, 6.5]])
        frac = rng.random((12, 3))
        atoms = Atoms(["Li"] * 6 + ["F"] * 6, scaled_positions=frac, cell=cell, pbc=True)
    src = tmp_path / "in.extxyz"
    write(src, atoms)
    atoms = read(src)  # the source as stored (extxyz keeps 8 decimals)
    out = tmp_path / "tri.data"
    make_structure(out, source=src)
    text = out.read_text()
    assert "xy xz yz" in text
    back = _read(out)
    # LAMMPS convention: a along x, b in xy, tilts reduced to |xy| <= lx/2 etc.
    cell = np.array(back.cell)
    assert abs(cell[0, 1]) < 1e-9 and abs(cell[0, 2]) < 1e-9 and abs(cell[1, 2]) < 1e-9
    assert abs(cell[1, 0]) <= cell[0, 0] / 2 + 1e-9
    assert abs(cell[2, 0]) <= cell[0, 0] / 2 + 1e-9
    assert abs(cell[2, 1]) <= cell[1, 1] / 2 + 1e-9
    assert back.cell.volume == pytest.approx(atoms.cell.volume, rel=1e-9)
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols()
    # Same crystal: all periodic distances agree (rotation + lattice reduction only).
    _, d0 = get_distances(atoms.positions, cell=atoms.cell, pbc=True)
    _, d1 = get_distances(back.positions, cell=back.cell, pbc=True)
    assert np.allclose(np.sort(d0.ravel()), np.sort(d1.ravel()), atol=1e-6)
    # And an independent energy: ASE's Lennard-Jones vs LAMMPS lj/cut (shifted) on the file.
    e_ase = _lj_energy_ase(atoms)
    script = tmp_path / "in.e"
    script.write_text(
        f"units metal\natom_style atomic\nread_data {out}\n"
        "pair_style lj/cut 5.0\npair_coeff * * 0.1 1.2\npair_modify shift yes\n"
        "thermo_style custom step pe\nrun 0\nprint \"PE= $(pe:%.10f)\"\n")
    proc = subprocess.run(["lmp", "-in", str(script), "-log", "none"], cwd=tmp_path,
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pe = float(next(line for line in proc.stdout.splitlines() if line.startswith("PE=")).split()[1])
    assert pe == pytest.approx(e_ase, rel=1e-8, abs=1e-8)


def test_lammps_box_is_right_handed_and_rejects_left_handed():
    new, tilts = lammps_box(np.array([[3.0, 0, 0], [1.0, 3.0, 0], [0.5, 0.5, 3.0]]))
    assert new[0, 0] == pytest.approx(3.0) and new[1, 1] > 0 and new[2, 2] > 0
    with pytest.raises(InputError, match="left-handed"):
        lammps_box(np.array([[3.0, 0, 0], [0, 0, 3.0], [0, 3.0, 0]]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"add": ["Xx@interstitial"]}, "unknown element 'Xx'"),
        ({"remove": ["Qq"]}, "unknown element 'Qq'"),
        ({"add": ["Li@octahedral"]}, "unknown site 'octahedral'"),
        ({"remove": ["Li@9z"]}, r"unknown site '9z'; Li sites of Fm-3m: Li\(1\) \(4a\)"),
        ({"remove": ["F(2)"]}, r"no site F\(2\); F sites of Fm-3m: F\(1\) \(4b\)"),
        ({"remove": ["8"]}, "atom index 8 is out of range"),
        ({"remove": ["Li@0.25,0.25,0.25"]}, "no Li atom within 0.5 Å"),
        ({"remove": ["0", "Li@0,0,0"]}, "already removed"),
        ({"supercell": "2", "min_length_A": 9.0}, "not both"),
        ({"min_length_A": -1.0}, "minimum cell length must be a positive"),
        ({"add": ["Li@0.5,0.5"]}, "unknown site '0.5,0.5'"),
        ({"add": ["Li@0,0,0"]}, "occupied"),
        ({"remove": ["Na"]}, "no Na atom"),
        ({"supercell": "0"}, "bad supercell '0'"),
        ({"supercell": "2x2"}, "bad supercell '2x2'"),
        ({"supercell": "two"}, "bad supercell 'two'"),
        ({"a_A": -4.0}, "lattice constant must be positive"),
        ({"types": ["Li"]}, "misses element"),
        ({"types": ["Li", "F", "Zz"]}, "unknown element 'Zz'"),
    ],
)
def test_bad_inputs_raise_input_error_naming_the_problem(tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        make_structure(tmp_path / "x.data", **kwargs)
    assert not (tmp_path / "x.data").exists()


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="nope.cif' does not exist"):
        make_structure(tmp_path / "x.data", source=tmp_path / "nope.cif")
    junk = tmp_path / "junk.cif"
    junk.write_bytes(b"\x00\x01garbage not a cif\n")
    with pytest.raises(InputError, match="cannot read structure file .*junk.cif"):
        make_structure(tmp_path / "x.data", source=junk)
    src = tmp_path / "cu.cif"
    write(src, bulk("Cu", "fcc", a=3.6))
    with pytest.raises(InputError, match="unknown site 'tetrahedral'.*void"):
        make_structure(tmp_path / "x.data", source=src, add=["Cu@tetrahedral"])
    with pytest.raises(InputError, match="--a .*applies only to built-in"):
        make_structure(tmp_path / "x.data", source=src, a_A=3.0)


def test_parse_supercell_forms():
    assert parse_supercell("3") == (3, 3, 3)
    assert parse_supercell("2x3x4") == (2, 3, 4)
    assert parse_supercell("2,1,1") == (2, 1, 1)


def test_cli_prints_type_map_and_reports_errors(tmp_path):
    out = tmp_path / "lif.data"
    cmd = [sys.executable, "-m", "ionmd.driver", "structure", "-o", str(out),
           "--supercell", "2", "--add", "Li@interstitial"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "65 atoms (33 Li, 32 F)" in proc.stdout
    assert "pair_coeff * * Li F" in proc.stdout
    bad = subprocess.run(cmd[:-1] + ["Li@nowhere"], capture_output=True, text=True,
                         env=_env(), timeout=60)
    assert bad.returncode == 2
    assert "unknown site 'nowhere'" in bad.stderr and "Traceback" not in bad.stderr


def test_committed_lif_data_file_matches_its_recipe(tmp_path):
    committed = REPO / "inputs" / "structures" / "lif_2x2x2_Li_interstitial.data"
    make_structure(tmp_path / "again.data", supercell=2, add=["Li@interstitial"], seed=0)

    def body(path):
        return [line for line in path.read_text().splitlines() if not line.startswith("#")]

    assert body(committed) == body(tmp_path / "again.data")
    # The header and the JSON sidecar report the added atom (the last one, LAMMPS id 65).
    assert "# defect: interstitial Li at void, index 64 (id 65)" in committed.read_text()
    side = json.loads(Path(str(committed) + ".json").read_text())
    assert side["defect_sites"][0]["index"] == 64
    assert side["defect_sites"][0]["nearest_A"] == pytest.approx(np.sqrt(3) / 4 * LIF_A_ANGSTROM)
    atoms = _read(committed)
    assert atoms.get_chemical_symbols().count("Li") == 33
    assert atoms.get_chemical_symbols().count("F") == 32
