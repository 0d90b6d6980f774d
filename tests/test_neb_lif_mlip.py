"""LiF Li-interstitial NEB with ``pair_style mlip/torch`` on 3 MPI partitions.

Checks that every partition evaluates the bundled model exactly as a single
process does (pair styles that use MPI_COMM_WORLD instead of LAMMPS's world break
here). Skipped when the bundled model ``inputs/models/lif_mace.pt`` is absent or the
plugin is not built (each with its own reason).
The same partition check runs on an EAM potential in ``test_neb_partition_energies_eam``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.parse import partition_energies_eV, read_coords_A, read_dump_positions_A
from ionmd.neb.potential import Potential
from ionmd.neb.relax import evaluate
from ionmd.neb.workflow import run_neb

MODEL = Path(__file__).resolve().parents[1] / "inputs" / "models" / "lif_mace.pt"


def check_partition_energies(
    workdir: Path, template, potential: Potential, n_images: int, tol_eV: float
) -> None:
    """Each replica's NEB energy (first and last step) equals a one-process LAMMPS evaluation."""
    first, last = partition_energies_eV(workdir)
    assert len(first) == len(last) == n_images
    for k in range(n_images):
        im = template.copy()
        im.positions = read_coords_A(workdir / f"coords.{k}")
        e0, _ = evaluate(im, potential)
        assert abs(e0 - first[k]) < tol_eV, (k, e0, first[k])
        im.positions = read_dump_positions_A(workdir / f"final.{k}.dump")
        e1, _ = evaluate(im, potential)
        assert abs(e1 - last[k]) < tol_eV, (k, e1, last[k])


def test_neb_partition_energies_eam(tmp_path):
    """The partition check itself, on a cheap classical potential (always runs)."""
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun not on PATH")
    from test_neb_eam import cu_vacancy_hop, eam_file

    initial, final, _ = cu_vacancy_hop()
    pot = Potential.from_lines("eam", [f"1 1 {eam_file()}"], ["Cu"])
    run_neb(
        initial, final, pot, tmp_path, n_images=3, settings=NEBSettings(n1_steps=20, n2_steps=20)
    )
    # the universe log prints energies with 8 significant digits (~1e-5 eV here)
    check_partition_energies(tmp_path, initial, pot, 3, tol_eV=1e-4)


def test_lif_interstitial_neb_mlip_torch_three_partitions(tmp_path):
    from ionmd.neb.structures import lif_case

    pot = Potential.from_model(MODEL, ["Li", "F"])
    initial, final = lif_case(
        "direct", n_cells=2
    )  # 65 atoms: a plumbing test, not a reported barrier
    r = run_neb(
        initial,
        final,
        pot,
        tmp_path,
        n_images=3,
        settings=NEBSettings(ftol_eV_A=0.05, n1_steps=200, n2_steps=200),
        label="LiF direct hop",
        cell="2x2x2 conventional (test only)",
        timeout_s=600,
    )
    check_partition_energies(tmp_path, initial, pot, 3, tol_eV=1e-3)
    assert r.n_images == 3 and len(r.energies_eV) == 3
    e = np.array(r.energies_eV)
    assert e[1] > max(e[0], e[2])  # the middle image is a barrier top between two minima
    if r.converged:
        assert 0.0 < r.barrier_forward_eV < 1.0
