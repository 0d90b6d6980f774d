"""NEB guards: a band below its end points is refused, a force above ftol is never converged,
an end point that moved far is flagged, and a plain (no-climb) band claims no climbing image.

Synthetic results (known energies and forces) check :func:`apply_guards` itself; two cheap
EAM runs check that a real LAMMPS NEB goes through the guards (CLI exit status 2).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_neb_eam import A_CU_A, cu_vacancy_hop, eam_file
from test_neb_errors import eam_neb_argv, ionmd_main

from ionmd.errors import IonmdError
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.result import (
    FLAG_BELOW_ENDPOINT,
    FLAG_ENDPOINT_MOVED,
    FLAG_NO_CLIMB,
    FLAG_NOT_CONVERGED,
    EndpointInfo,
    HopInfo,
    NEBResult,
    apply_guards,
)
from ionmd.neb.workflow import run_neb

needs_mpi = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")


def synthetic(
    energies_eV,
    max_force_eV_A=0.005,
    ftol_eV_A=0.01,
    climb=True,
    criteria=("force tolerance", "force tolerance"),
    shift_A=0.05,
) -> NEBResult:
    """A result as collect_result builds it, before the guards (LAMMPS claims convergence)."""
    e = np.asarray(energies_eV, dtype=float)
    x = np.linspace(0.0, 1.0, e.size)
    top = int(np.argmax(e))
    return NEBResult(
        label="synthetic hop",
        model="m",
        cell="test",
        n_atoms=10,
        n_images=e.size,
        interpolation="idpp",
        climb=climb,
        converged=True,
        max_force_eV_A=max_force_eV_A,
        ftol_eV_A=ftol_eV_A,
        n_steps=[100, 50] if climb else [100],
        stopping_criteria=list(criteria if climb else criteria[:1]),
        reaction_coordinate=x.tolist(),
        path_length_A=2.0,
        energies_eV=e.tolist(),
        barrier_forward_eV=float(e.max() - e[0]),
        barrier_backward_eV=float(e.max() - e[-1]),
        climbing_image=top,
        endpoints={
            "initial": EndpointInfo(-100.0, 0.5 * shift_A, 1e-4, 10),
            "final": EndpointInfo(-100.0, 0.5 * shift_A, 1e-4, 10),
        },
        endpoint_separation_A=[2.85, 2.85 - shift_A],  # relaxed toward each other by shift_A
    )


def test_the_issue_case_is_refused_with_every_reason():
    """--no-climb, middle image 56 meV below both ends, ends moved 0.77 Å, max_force 0.195 > 0.01."""
    r = synthetic(
        [0.0, -0.056, 0.015, -0.001][:3] + [0.0],
        max_force_eV_A=0.195,
        climb=False,
        shift_A=0.77,
    )
    assert r.barrier_forward_eV == pytest.approx(0.015)  # what was reported before the guards
    apply_guards(r)
    assert r.refused
    assert set(r.flags) == {FLAG_BELOW_ENDPOINT, FLAG_NOT_CONVERGED, FLAG_ENDPOINT_MOVED, FLAG_NO_CLIMB}
    assert r.converged is False
    assert r.barrier_forward_eV is None and r.barrier_backward_eV is None
    assert r.climbing_image is None and r.highest_image == 2
    assert "band below end point: end points not minima" in r.message
    assert "56.0 meV" in r.message and "0.195" in r.message
    assert "relaxed 0.770 Å toward each other" in r.message
    with pytest.raises(IonmdError, match="refused: band below end point"):
        r.require_converged()
    assert "REFUSED" in r.summary()


def test_a_band_with_an_image_below_its_end_points_must_be_refused():
    """Even a converged climbing-image band is refused when an image dips below an end point."""
    r = apply_guards(synthetic([0.0, 0.2, 0.5, -0.02, 0.01]))
    assert r.flags == [FLAG_BELOW_ENDPOINT]
    assert r.refused and r.barrier_forward_eV is None and not r.converged
    with pytest.raises(IonmdError, match="refused: band below end point"):
        r.require_converged()
    # below the *lower* end point counts, not only below the initial one
    r = apply_guards(synthetic([0.10, 0.3, 0.5, 0.08, 0.09]))
    assert FLAG_BELOW_ENDPOINT in r.flags and "10.0 meV" in r.message


def test_a_clean_converged_band_keeps_its_barrier_and_has_no_flags():
    e = 0.3 * np.sin(np.linspace(0, np.pi, 7)) ** 2
    r = apply_guards(synthetic(e))
    assert r.flags == [] and r.message == ""
    assert r.converged and not r.refused
    assert r.barrier_forward_eV == pytest.approx(0.3)
    assert r.climbing_image == 3
    r.require_converged()


def test_dip_within_tolerance_is_not_refused():
    r = apply_guards(synthetic([0.0, -0.001, 0.4, 0.0005, 0.0]))
    assert FLAG_BELOW_ENDPOINT not in r.flags and r.barrier_forward_eV is not None
    r = apply_guards(synthetic([0.0, -0.001, 0.4, 0.0, 0.0]), below_tol_eV=0.0005)
    assert FLAG_BELOW_ENDPOINT in r.flags


def test_force_above_ftol_is_never_converged_whatever_lammps_said():
    r = apply_guards(synthetic([0.0, 0.2, 0.4, 0.2, 0.0], max_force_eV_A=0.0101))
    assert r.flags == [FLAG_NOT_CONVERGED] and not r.converged
    assert r.barrier_forward_eV is None
    with pytest.raises(IonmdError, match="did not converge"):
        r.require_converged()


def test_endpoint_shift_flag_keeps_the_barrier_and_no_climb_is_labelled():
    r = apply_guards(synthetic([0.0, 0.2, 0.4, 0.2, 0.0], shift_A=0.51))
    assert r.flags == [FLAG_ENDPOINT_MOVED] and r.barrier_forward_eV == pytest.approx(0.4)
    assert apply_guards(synthetic([0.0, 0.2, 0.4, 0.2, 0.0], shift_A=0.45)).flags == []
    assert apply_guards(synthetic([0.0, 0.2, 0.4, 0.2, 0.0], shift_A=0.45), max_endpoint_shift_A=0.4).flags == [
        FLAG_ENDPOINT_MOVED
    ]
    r = apply_guards(synthetic([0.0, 0.2, 0.4, 0.2, 0.0], climb=False))
    assert r.flags == [FLAG_NO_CLIMB] and r.climbing_image is None and r.highest_image == 2
    assert r.barrier_forward_eV == pytest.approx(0.4)
    assert "no climbing image" in r.summary()


def test_flags_and_hop_survive_json(tmp_path):
    r = apply_guards(synthetic([0.0, -0.05, 0.0], climb=False))
    r.hop = HopInfo("Li(1)-Li(2)", "vacancy", "Li", [0, 0, 0], [0.5, 0.5, 0], 2.1, 7, 1)
    r.write_json(tmp_path / "neb.json")
    back = NEBResult.read_json(tmp_path / "neb.json")
    assert back.flags == r.flags and back.refused
    assert back.hop == r.hop and back.climbing_image is None
    # a result written before flags existed still reads (no flags, highest image from energies)
    d = json.loads((tmp_path / "neb.json").read_text())
    for k in ("flags", "hop", "highest_image"):
        d.pop(k)
    (tmp_path / "old.json").write_text(json.dumps(d))
    old = NEBResult.read_json(tmp_path / "old.json")
    assert old.flags == [] and old.hop is None and old.highest_image == 0


@needs_mpi
def test_real_band_through_a_minimum_is_refused_by_the_cli(tmp_path, capsys):
    """End points that are not minima: one Cu atom pushed 0.4 Å either way from its site.

    The straight path passes through the lattice site, far below both end points. LAMMPS
    relaxes the end replicas with the true forces during the NEB, so by the last step they
    have slid back to the site and the final profile is flat (this is how a flat, "converged"
    band of a few meV came out before the guards). With --no-relax --no-climb the CLI must
    refuse the band (exit 2), write no barrier and claim no climbing image.
    """
    from ase.build import bulk

    perfect = bulk("Cu", "fcc", a=A_CU_A, cubic=True).repeat(2)
    initial, final = perfect.copy(), perfect.copy()
    initial.positions[0] += [0.4, 0.0, 0.0]
    final.positions[0] -= [0.4, 0.0, 0.0]
    work = tmp_path / "w"
    argv = eam_neb_argv(
        tmp_path, initial, final, "--images", "3", "--no-relax", "--no-climb", "--steps", "50",
        "--max-endpoint-shift", "0.3",
    )  # fmt: skip
    code = ionmd_main([*argv, "--workdir", str(work)])
    err = capsys.readouterr().err
    assert code == 2
    assert "band below end point: end points not minima" in err
    res = json.loads((work / "neb.json").read_text())
    assert FLAG_BELOW_ENDPOINT in res["flags"] and FLAG_NO_CLIMB in res["flags"]
    assert res["barrier_forward_eV"] is None and res["climbing_image"] is None
    assert res["climb"] is False
    assert res["initial_energies_eV"][1] < -0.3  # at the start the middle image is far below
    assert min(res["endpoint_drop_eV"]) > 0.3  # both end replicas relaxed during the NEB
    assert min(res["endpoint_drift_A"]) > 0.3  # ... back towards the lattice site (0.4 Å)
    assert "endpoint_moved" in res["flags"]


@needs_mpi
def test_real_run_flags_end_points_that_moved_more_than_asked(tmp_path):
    """Unrelaxed Cu vacancy-hop end points relax by a few hundredths of an Å, which changes
    their separation by less than that: flagged against a 1e-4 Å limit only (not by the
    default); a 20-step plain band is also not converged and not climbing."""
    initial, final, _ = cu_vacancy_hop()
    pot = Potential.from_lines("eam", [f"1 1 {eam_file()}"], ["Cu"])
    r = run_neb(
        initial,
        final,
        pot,
        tmp_path,
        n_images=3,
        settings=NEBSettings(n1_steps=20, n2_steps=0, ftol_eV_A=1e-4),
        max_endpoint_shift_A=1e-4,
        timeout_s=120,
    )
    moved = [ep.max_displacement_A for ep in r.endpoints.values()]
    assert all(0.005 < m < 0.5 for m in moved), moved
    before, after = r.endpoint_separation_A
    assert before == pytest.approx(A_CU_A / np.sqrt(2)) and 1e-4 < abs(before - after) < 0.5
    assert FLAG_ENDPOINT_MOVED in r.flags and FLAG_NO_CLIMB in r.flags
    assert FLAG_NOT_CONVERGED in r.flags and not r.converged and r.barrier_forward_eV is None
    assert r.climbing_image is None
    assert "each other (separation" in r.message
    assert FLAG_ENDPOINT_MOVED not in apply_guards(r.__class__(**{**r.__dict__, "flags": []})).flags
