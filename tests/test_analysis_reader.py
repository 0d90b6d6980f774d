"""Dump reader: coordinate styles, triclinic and changing boxes, gzip, ASE, and every error path."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ionmd.analysis.synthetic import brownian_walk, write_lammps_dump
from ionmd.analysis.trajectory import Selection, load_trajectory
from ionmd.errors import InputError
from ionmd.lammpsio.datafile import parse_type_map, read_data_file, read_type_map
from ionmd.lammpsio.dump import iter_dump

CUBIC = np.diag([8.0, 8.0, 8.0])
TRICLINIC = np.array([[8.0, 0.0, 0.0], [2.0, 7.0, 0.0], [-1.5, 1.0, 6.5]])


def _system(rng, n_frames=30, cell=CUBIC):
    """4 mobile 'Li' (type 1) walking far across the cell and 4 nearly fixed 'F' (type 2)."""
    li = brownian_walk(n_frames, 4, 4.0, 0.1, rng, start_A=rng.uniform(0, 6, (4, 3)))
    f = np.broadcast_to(rng.uniform(0, 6, (1, 4, 3)), (n_frames, 4, 3)) + rng.normal(0, 0.05, (n_frames, 4, 3))
    pos = np.concatenate([li, f], axis=1)
    types = np.array([1] * 4 + [2] * 4)
    return pos, types, ["Li"] * 4 + ["F"] * 4


@pytest.mark.parametrize("mode", ["unwrapped", "image", "wrapped", "scaled", "scaled_image"])
@pytest.mark.parametrize("cell", [CUBIC, TRICLINIC], ids=["cubic", "triclinic"])
def test_coordinate_styles_recover_unwrapped_positions(tmp_path, mode, cell):
    rng = np.random.default_rng(3)
    pos, types, elements = _system(rng, cell=cell)
    frac = np.linalg.solve(cell.T, pos[:, :4].reshape(-1, 3).T).T
    assert len(np.unique(np.floor(frac), axis=0)) > 3  # the ions really cross periodic boundaries
    path = write_lammps_dump(tmp_path / "d.lammpstrj", pos, cell, types, elements, mode=mode)
    traj = load_trajectory(path, Selection(species=["Li"]), dt_fs=2.0, drift_correction=False)
    assert traj.n_ions == 4 and traj.n_frames == 30
    # unwrapped positions agree with the truth up to a constant lattice translation per ion
    d = traj.positions_A - pos[:, :4]
    np.testing.assert_allclose(d - d[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(traj.time_ps[1], 10 * 2.0e-3)
    np.testing.assert_allclose(traj.volume_A3[0], abs(np.linalg.det(cell)))


def test_gzip_type_map_and_types_selection(tmp_path):
    rng = np.random.default_rng(4)
    pos, types, _ = _system(rng)
    path = write_lammps_dump(tmp_path / "d.lammpstrj.gz", pos, CUBIC, types, None, mode="image")
    a = load_trajectory(path, Selection(species=["Li"], type_map={1: "Li", 2: "F"}), 1.0)
    b = load_trajectory(path, Selection(types=[1]), 1.0)
    np.testing.assert_allclose(a.positions_A, b.positions_A)
    assert a.symbols == ["Li"] * 4 and b.symbols == ["type 1"] * 4


def test_drift_correction_removes_framework_motion(tmp_path):
    rng = np.random.default_rng(5)
    pos, types, elements = _system(rng)
    drift = np.linspace(0, 5.0, 30)[:, None, None] * np.array([1.0, 0.5, 0.0])
    path = write_lammps_dump(tmp_path / "d.lammpstrj", pos + drift, CUBIC, types, elements)
    traj = load_trajectory(path, Selection(species=["Li"]), 1.0)
    com_noise = pos[:, 4:].mean(axis=1) - pos[0, 4:].mean(axis=0)
    np.testing.assert_allclose(traj.positions_A, pos[:, :4] - com_noise[:, None, :], atol=1e-5)


def test_changing_box_npt(tmp_path):
    rng = np.random.default_rng(6)
    n = 30
    scale = 1.0 + 0.02 * np.sin(np.arange(n) / 4.0)
    cells = CUBIC[None] * scale[:, None, None]
    frac = np.cumsum(rng.normal(0, 0.03, (n, 3, 3)), axis=0) + 0.5
    pos = np.einsum("tij,tjk->tik", frac, cells)
    path = write_lammps_dump(tmp_path / "d.lammpstrj", pos, cells, np.array([1, 1, 1]), mode="wrapped")
    traj = load_trajectory(path, Selection(types=[1]), 1.0)
    np.testing.assert_allclose(traj.positions_A, pos, atol=1e-5)
    np.testing.assert_allclose(traj.volume_A3, 512.0 * scale**3, rtol=1e-6)


def test_unsorted_ids_are_sorted(tmp_path):
    rng = np.random.default_rng(7)
    pos, types, elements = _system(rng, n_frames=5)
    perm = np.array([3, 1, 0, 2, 7, 6, 5, 4])
    ids = np.arange(1, 9)
    path = write_lammps_dump(tmp_path / "d.lammpstrj", pos[:, perm], CUBIC, types[perm],
                             [elements[i] for i in perm], ids=ids[perm])
    traj = load_trajectory(path, Selection(species=["Li"]), 1.0, drift_correction=False)
    np.testing.assert_allclose(traj.positions_A, pos[:, :4], atol=1e-6)


def test_extxyz_via_ase(tmp_path):
    import ase.io
    from ase import Atoms

    rng = np.random.default_rng(8)
    pos, _, elements = _system(rng, n_frames=10)
    frames = []
    for k in range(10):
        a = Atoms(elements, positions=pos[k], cell=CUBIC, pbc=True)
        a.wrap()
        a.info["timestep"] = 5 * k
        frames.append(a)
    ase.io.write(tmp_path / "t.extxyz", frames)
    traj = load_trajectory(tmp_path / "t.extxyz", Selection(species=["Li"]), 1.0, drift_correction=False)
    d = traj.positions_A - pos[:, :4]
    np.testing.assert_allclose(d - d[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(traj.time_ps[1], 5e-3)


def test_data_file_type_map_and_masses(tmp_path):
    a = tmp_path / "a.data"
    a.write_text("LiF type_map: 1=Li 2=F\n\n2 atoms\n2 atom types\n0 4 xlo xhi\n0 4 ylo yhi\n0 4 zlo zhi\n\n"
                 "Masses\n\n1 6.94\n2 19.0\n\nAtoms # atomic\n\n2 2 2.0 2.0 2.0\n1 1 0.0 0.0 0.0\n")
    assert read_type_map(a) == {1: "Li", 2: "F"}
    ref = read_data_file(a)
    assert ref.symbols == ["Li", "F"]
    np.testing.assert_allclose(ref.positions_A[1], [2.0, 2.0, 2.0])
    b = tmp_path / "b.data"
    b.write_text("plain\n\n1 atoms\n2 atom types\n0 4 xlo xhi\n0 4 ylo yhi\n0 4 zlo zhi\n\n"
                 "Masses\n\n1 6.94 # Li\n2 19.0 # F\n\nAtoms # charge\n\n1 1 1.0 0.5 0.5 0.5\n")
    assert read_type_map(b) == {1: "Li", 2: "F"}
    np.testing.assert_allclose(read_data_file(b).positions_A[0], [0.5, 0.5, 0.5])
    assert parse_type_map("1=Li,2=F") == {1: "Li", 2: "F"}


# ---------------------------------------------------------------- error paths

def _good_dump(tmp_path, n_frames=6):
    rng = np.random.default_rng(9)
    pos, types, elements = _system(rng, n_frames=n_frames)
    return write_lammps_dump(tmp_path / "d.lammpstrj", pos, CUBIC, types, elements)


def test_truncated_last_frame_warns_and_is_dropped(tmp_path):
    path = _good_dump(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.lammpstrj"
    cut.write_text("".join(lines[:-3]) + lines[-3][:7])  # end mid-line in the last frame
    with pytest.warns(UserWarning, match=r"cut.lammpstrj.*last frame.*truncated"):
        frames = list(iter_dump(cut))
    assert len(frames) == 5
    gz = tmp_path / "cut.lammpstrj.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("".join(lines[:-10]))
    with pytest.warns(UserWarning, match="truncated"):
        assert len(list(iter_dump(gz))) == 5
    # a gzip stream cut in the middle of its compressed bytes, and one missing only its end marker
    data = gz.read_bytes()
    for n_bytes, n_frames in ((len(data) // 2, None), (len(data) - 5, 5)):
        bad = tmp_path / "bytes.lammpstrj.gz"
        bad.write_bytes(data[:n_bytes])
        with pytest.warns(UserWarning, match="bytes.lammpstrj.gz': stream ends early"):
            frames = list(iter_dump(bad))
        assert n_frames is None or len(frames) == n_frames
    notgz = tmp_path / "not.lammpstrj.gz"
    notgz.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(InputError, match="not.lammpstrj.gz': cannot read"):
        list(iter_dump(notgz))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda L: L.__setitem__(1, "ten\n"), r"line 2: timestep 'ten' is not an integer"),
        (lambda L: L.__setitem__(2, "ITEM: NUMBER OF ATMS\n"), r"line 3: expected 'ITEM: NUMBER OF ATOMS'"),
        (lambda L: L.__setitem__(3, "x8\n"), r"line 4: number of atoms 'x8' is not an integer"),
        (lambda L: L.__setitem__(4, "ITEM: BOX\n"), r"line 5: expected 'ITEM: BOX BOUNDS'"),
        (lambda L: L.__setitem__(5, "0 a\n"), r"line 6: box bounds line '0 a' is not numbers"),
        (lambda L: L.__setitem__(8, "ITEM: ATOMS id type element q\n"), r"line 9: .*no coordinate columns"),
        (lambda L: L.__setitem__(8, "ITEM: ATOMS type element xu yu zu\n"), r"line 9: .*no 'id' column"),
        (lambda L: L.__setitem__(10, "2 1 Li 0.1 0.2\n"), r"line 11: expected 6 columns"),
        (lambda L: L.__setitem__(11, "3 1 Li 0.1 0.2 abc\n"), r"line 12: column 'zu' value 'abc' is not a number"),
        (lambda L: L.__setitem__(17, "junk\n"), r"line 18: expected 'ITEM: TIMESTEP', found 'junk'"),
    ],
)
def test_malformed_dump_names_file_and_line(tmp_path, edit, message):
    path = _good_dump(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    edit(lines)
    bad = tmp_path / "bad.lammpstrj"
    bad.write_text("".join(lines))
    with pytest.raises(InputError, match="bad.lammpstrj' " + message):
        list(iter_dump(bad))


def test_trajectory_level_errors(tmp_path):
    path = _good_dump(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_trajectory(tmp_path / "missing.lammpstrj", Selection(species=["Li"]), 1.0)
    with pytest.raises(InputError, match="species 'Na' is not in dump"):
        load_trajectory(path, Selection(species=["Na"]), 1.0)
    with pytest.raises(InputError, match="type 5 is not in dump"):
        load_trajectory(path, Selection(types=[5]), 1.0)
    with pytest.raises(InputError, match="--species"):
        load_trajectory(path, Selection(), 1.0)
    with pytest.raises(InputError, match="--dt-fs 0.0 is not a positive finite time"):
        load_trajectory(path, Selection(species=["Li"]), 0.0)
    rng = np.random.default_rng(1)
    pos, types, _ = _system(rng, n_frames=6)
    noel = write_lammps_dump(tmp_path / "noel.lammpstrj", pos, CUBIC, types, None)
    with pytest.raises(InputError, match="no element column.*--type-map"):
        load_trajectory(noel, Selection(species=["Li"]), 1.0)
    with pytest.raises(InputError, match=r"type\(s\) \[2\] are not in the type map"):
        load_trajectory(noel, Selection(species=["Li"], type_map={1: "Li"}), 1.0)
    uneven = write_lammps_dump(tmp_path / "uneven.lammpstrj", pos, CUBIC, types, None,
                               timesteps=np.array([0, 10, 20, 35, 45, 55]))
    with pytest.raises(InputError, match="not evenly spaced.*timestep 20 is followed by 35"):
        load_trajectory(uneven, Selection(types=[1]), 1.0)
    short = write_lammps_dump(tmp_path / "short.lammpstrj", pos[:3], CUBIC, types, None)
    with pytest.raises(InputError, match="has 3 frames"):
        load_trajectory(short, Selection(types=[1]), 1.0)
    text = noel.read_text().splitlines(keepends=True)
    lost = tmp_path / "lost.lammpstrj"
    frame = "".join(text[:17])
    lost.write_text(frame + frame.replace("\n8\n", "\n7\n", 1).replace(text[16], "").replace(
        "TIMESTEP\n0\n", "TIMESTEP\n10\n"))
    with pytest.raises(InputError, match="line 18: the atoms at timestep 10 differ"):
        load_trajectory(lost, Selection(types=[1]), 1.0)
    empty = tmp_path / "empty.lammpstrj"
    empty.write_text("")
    with pytest.raises(InputError, match="empty.lammpstrj' contains no complete frame"):
        list(iter_dump(empty))
    bad_xyz = tmp_path / "bad.extxyz"
    bad_xyz.write_text("2\nnot a comment line\nLi 0 0\n")
    with pytest.raises(InputError, match="bad.extxyz"):
        load_trajectory(bad_xyz, Selection(species=["Li"]), 1.0)


def test_data_file_errors(tmp_path):
    with pytest.raises(InputError, match="nope.data' does not exist"):
        read_type_map(tmp_path / "nope.data")
    f = tmp_path / "x.data"
    f.write_text("plain\n\n1 atoms\n1 atom types\n0 4 xlo xhi\n0 4 ylo yhi\n0 4 zlo zhi\n\n"
                 "Masses\n\n1 6.94\n\nAtoms # atomic\n\n1 1 0.0 zero 0.0\n")
    with pytest.raises(InputError, match="x.data' names no atom types"):
        read_type_map(f)
    with pytest.raises(InputError, match=r"x.data' line 15: cannot read atom line"):
        read_data_file(f)
    with pytest.raises(InputError, match="type map entry 'Li' is not of the form"):
        parse_type_map("1=Li,Li")


def test_general_triclinic_abc_origin_box(tmp_path):
    """LAMMPS >= 2023 general triclinic dumps: BOX BOUNDS abc origin, one cell vector and origin per line."""
    a, b, c = np.array([6.0, 0.0, 0.0]), np.array([1.0, 5.0, 0.5]), np.array([0.5, 1.0, 7.0])
    origin = np.array([-1.0, 0.5, 0.0])
    frac = np.array([[0.1, 0.2, 0.3], [0.95, 0.5, 0.5]])
    text = ""
    for step, shift in ((0, 0.0), (10, 0.1), (20, 0.2), (30, 0.3)):
        f = np.mod(frac + [shift, 0, 0], 1.0)
        text += (f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS abc origin pp pp pp\n"
                 f"{a[0]} {a[1]} {a[2]} {origin[0]}\n{b[0]} {b[1]} {b[2]} {origin[1]}\n"
                 f"{c[0]} {c[1]} {c[2]} {origin[2]}\nITEM: ATOMS id type xs ys zs\n"
                 + "".join(f"{i + 1} 1 {x:.6f} {y:.6f} {z:.6f}\n" for i, (x, y, z) in enumerate(f)))
    path = tmp_path / "g.lammpstrj"
    path.write_text(text)
    frames = list(iter_dump(path))
    np.testing.assert_allclose(frames[0].cell_A, np.array([a, b, c]))
    np.testing.assert_allclose(frames[0].positions_A, origin + frac @ np.array([a, b, c]), atol=1e-5)
    # the second atom crosses the periodic boundary; the unwrapped motion is 0.1 a per frame
    traj = load_trajectory(path, Selection(types=[1]), 1.0)
    np.testing.assert_allclose(traj.positions_A[3] - traj.positions_A[0], [0.3 * a, 0.3 * a], atol=1e-5)


def test_zero_momentum_drift_when_dump_has_only_mobile_ions(tmp_path):
    """ionmd's driver dumps only the mobile species: the framework drift follows from zero total momentum."""
    rng = np.random.default_rng(10)
    n, n_li, n_f = 40, 6, 6
    li = brownian_walk(n, n_li, 1.0, 0.1, rng, start_A=rng.uniform(0, 8, (n_li, 3)))
    from ase.data import atomic_masses, atomic_numbers

    m_li, m_f = atomic_masses[atomic_numbers["Li"]], atomic_masses[atomic_numbers["F"]]
    com_li = li.mean(axis=1)
    com_f = -(n_li * m_li) / (n_f * m_f) * (com_li - com_li[0])  # total momentum zero
    path = write_lammps_dump(tmp_path / "li.lammpstrj", li, CUBIC, np.ones(n_li, dtype=int), ["Li"] * n_li)
    traj = load_trajectory(path, Selection(species=["Li"]), 1.0, system_symbols=["Li"] * n_li + ["F"] * n_f)
    assert traj.drift_corrected
    np.testing.assert_allclose(traj.positions_A, li - com_f[:, None, :], atol=1e-5)
    plain = load_trajectory(path, Selection(species=["Li"]), 1.0)
    assert not plain.drift_corrected


def test_resumed_run_with_repeated_timesteps_keeps_the_new_frames(tmp_path):
    rng = np.random.default_rng(11)
    pos, types, elements = _system(rng, n_frames=10)
    a = write_lammps_dump(tmp_path / "a.lammpstrj", pos[:7], CUBIC, types, elements)
    b = write_lammps_dump(tmp_path / "b.lammpstrj", pos[5:], CUBIC, types, elements,
                          timesteps=np.arange(5, 10) * 10)
    joined = tmp_path / "j.lammpstrj"
    joined.write_text(a.read_text() + b.read_text())  # restart at step 50 re-dumps steps 50 and 60
    with pytest.warns(UserWarning, match="timestep 50 repeats earlier frames"):
        traj = load_trajectory(joined, Selection(species=["Li"]), 1.0, drift_correction=False)
    assert traj.n_frames == 10
    np.testing.assert_allclose(traj.positions_A, pos[:, :4], atol=1e-6)
