"""NEB error paths: mismatched end points, an end point that relaxes into the other,
and an NEB that runs out of steps (reported with its force, without a barrier)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_neb_eam import A_CU_A, cu_vacancy_hop, eam_file

from ionmd.errors import InputError, IonmdError
from ionmd.examples.lif.neb_cases import BUILTIN_CASES, lif_case
from ionmd.lammpsio.datafile import write_lammps_data
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.structures import check_endpoints, max_displacement_A
from ionmd.neb.workflow import run_neb


def ionmd_main(argv: list[str]) -> int:
    """``ionmd`` with only the ``neb`` sub-command (other areas' commands may be mid-build)."""
    import argparse
    import sys

    from ionmd.neb import cli

    parser = argparse.ArgumentParser(prog="ionmd")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IonmdError as exc:  # as ionmd.cli.main does
        print(f"ionmd {args.command}: error: {exc}", file=sys.stderr)
        return 2


def eam_neb_argv(tmp_path, initial, final, *options: str) -> list[str]:
    """``ionmd neb`` arguments for two Cu end points (written as extxyz) with the EAM potential."""
    from ase.io import write

    write(tmp_path / "i.extxyz", initial)
    write(tmp_path / "f.extxyz", final)
    return [
        "neb",
        "--initial", str(tmp_path / "i.extxyz"),
        "--final", str(tmp_path / "f.extxyz"),
        "--pair-style", "eam",
        "--pair-coeff", f"1 1 {eam_file()}",
        "--species", "Cu",
        *options,
    ]  # fmt: skip


needs_mpi = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")


def test_builtin_lif_cases_have_217_atoms_and_the_right_hops():
    a = 4.03
    for case in ("direct", "knockoff"):
        i, f = lif_case(case, 3, a)
        assert len(i) == 217 and i.get_chemical_formula() == "F108Li109"
        check_endpoints(i, f)
        # the interstitial starts at a cube centre: 4 Li + 4 F at sqrt(3)/4 a
        d = np.linalg.norm(i.positions[:-1] - i.positions[-1], axis=1)
        assert np.sum(np.abs(d - np.sqrt(3) / 4 * a) < 1e-6) == 8
    i, f = lif_case("direct", 3, a)
    assert max_displacement_A(i, f) == pytest.approx(
        a / 2
    )  # one atom moves, to the next cube centre
    i, f = lif_case("knockoff", 3, a)
    moved = np.flatnonzero(np.linalg.norm(f.positions - i.positions, axis=1) > 1e-9)
    assert len(moved) == 2  # interstitial and the Li it pushes, both along [111]
    for k in moved:
        step = f.positions[k] - i.positions[k]
        assert np.allclose(np.abs(step), a / 4)
    i, f = lif_case("vacancy", 3, a)
    assert len(i) == 215 and max_displacement_A(i, f) == pytest.approx(a / np.sqrt(2))
    assert set(BUILTIN_CASES) == {"direct", "knockoff", "vacancy"}


def test_different_atom_counts_are_named():
    i, _ = lif_case("direct", 2)
    _, f = lif_case("vacancy", 2)
    with pytest.raises(
        InputError, match=r"different atom counts: initial has 65 atoms, final has 63"
    ):
        check_endpoints(i, f)


def test_different_atom_order_is_named():
    i, f = lif_case("direct", 2)
    symbols = f.get_chemical_symbols()
    symbols[0], symbols[1] = symbols[1], symbols[0]
    f.set_chemical_symbols(symbols)
    with pytest.raises(
        InputError, match=r"different orders: atom 1 \(1-based\) is Li in initial but F in final"
    ):
        check_endpoints(i, f)


def test_cli_reports_mismatched_files(tmp_path, capsys):
    i, _ = lif_case("direct", 2)
    _, f = lif_case("vacancy", 2)
    write_lammps_data(i, tmp_path / "a.data", ["Li", "F"], keep_cell=True)
    write_lammps_data(f, tmp_path / "b.data", ["Li", "F"], keep_cell=True)
    code = ionmd_main(
        [
            "neb",
            "--initial",
            str(tmp_path / "a.data"),
            "--final",
            str(tmp_path / "b.data"),
            "--pair-style",
            "zero 4.0",
            "--pair-coeff",
            "* *",
            "--species",
            "Li",
            "F",
            "--workdir",
            str(tmp_path / "w"),
        ]
    )
    assert code == 2
    assert "different atom counts" in capsys.readouterr().err


@needs_mpi
def test_endpoint_that_relaxes_into_the_other_is_refused(tmp_path):
    """A 'final' state with the hopping atom only 15% of the way relaxes back to the initial one."""
    from ionmd.neb.potential import Potential

    initial, final, hop = cu_vacancy_hop()
    near = initial.copy()
    near.positions[hop] += 0.15 * (final.positions[hop] - initial.positions[hop])
    pot = Potential.from_lines("eam", [f"1 1 {eam_file()}"], ["Cu"])
    with pytest.raises(InputError, match="final end point relaxed into the initial one"):
        run_neb(initial, near, pot, tmp_path, n_images=3)


@needs_mpi
def test_unconverged_neb_reports_force_and_profile_but_no_barrier(tmp_path, capsys):
    """A 4-step budget cannot converge: the CLI writes the partial profile, claims no barrier, exits 2."""
    initial, final, _ = cu_vacancy_hop()
    work = tmp_path / "w"
    argv = eam_neb_argv(
        tmp_path, initial, final,
        "--images", "3", "--steps", "4", "--climb-steps", "4", "--ftol", "0.001",
    )  # fmt: skip
    code = ionmd_main([*argv, "--workdir", str(work)])
    out = capsys.readouterr()
    assert code == 2
    assert "did not converge" in out.err and "no barrier is reported" in out.err
    res = json.loads((work / "neb.json").read_text())
    assert res["converged"] is False
    assert res["barrier_forward_eV"] is None and res["barrier_backward_eV"] is None
    assert res["max_force_eV_A"] > 0.001  # the achieved force, above the tolerance
    assert len(res["energies_eV"]) == 3 and res["energies_eV"][0] == 0.0
    assert max(res["energies_eV"]) > 0.3  # the partial profile is kept (vacancy hop ~0.7 eV)
    assert "max iterations" in res["stopping_criteria"][-1]
    assert (work / "neb.png").is_file()
    assert A_CU_A > 0


def test_neb_settings_are_checked(tmp_path):
    from ionmd.neb.lammps_input import write_neb_input

    i, f = lif_case("direct", 2)
    with pytest.raises(InputError, match="min_style must be fire or quickmin"):
        write_neb_input(
            tmp_path,
            [i, i, f],
            ["pair_style zero 4.0", "pair_coeff * *"],
            ["Li", "F"],
            NEBSettings(min_style="cg"),
        )
    with pytest.raises(IonmdError):
        run_neb(
            i,
            f,
            __import__("ionmd.neb.potential", fromlist=["Potential"]).Potential.from_lines(
                "zero 4.0", ["* *"], ["Li"]
            ),
            tmp_path,
            n_images=3,
        )


def test_crash_after_every_replica_finished_is_a_warning_else_an_error(tmp_path):
    """A launcher that exits non-zero after all replicas closed their logs (a teardown crash)."""
    import stat

    from ionmd.neb.runner import replicas_finished, run_neb_partitions

    fake = tmp_path / "fake_mpirun"
    fake.write_text("#!/bin/sh\nexit 245\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    work = tmp_path / "w"
    work.mkdir()
    for k in range(3):
        (work / f"log.lammps.{k}").write_text("neb ...\nTotal wall time: 0:00:01\n")
        if k < 2:
            (work / f"final.{k}.dump").write_text("ITEM: TIMESTEP\n")
    assert not replicas_finished(work, 3)
    with pytest.raises(IonmdError, match=r"LAMMPS NEB failed .*\(exit 245\)"):
        run_neb_partitions(work, 3, mpirun=str(fake))
    (work / "final.2.dump").write_text("ITEM: TIMESTEP\n")
    assert replicas_finished(work, 3)
    with pytest.warns(RuntimeWarning, match="exited with status 245 .* after every replica"):
        run_neb_partitions(work, 3, mpirun=str(fake))
    (work / "log.lammps.1").write_text("ERROR: something real\n")
    with pytest.raises(IonmdError, match="ERROR: something real"):
        run_neb_partitions(work, 3, mpirun=str(fake))
