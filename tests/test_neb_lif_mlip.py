"""LiF Li-interstitial NEB with ``pair_style mlip/torch`` on 3 MPI partitions.

Checks that every partition evaluates the bundled MACE and DeePMD models exactly as a
single process does (pair styles that use MPI_COMM_WORLD instead of LAMMPS's world break
here; deepmd-kit's does). Skipped when a bundled model in ``inputs/models`` is absent or
the plugin is not built (each with its own reason).
The same partition check runs on an EAM potential in ``test_neb_partition_energies_eam``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ionmd.examples.lif.neb_cases import lif_case, run_case
from ionmd.filehash import file_sha256
from ionmd.neb.lammps_input import NEBSettings
from ionmd.neb.parse import partition_energies_eV, read_coords_A, read_dump_positions_A
from ionmd.neb.potential import Potential
from ionmd.neb.relax import evaluate_many
from ionmd.neb.workflow import run_neb

MODELS = [
    Path(__file__).resolve().parents[1] / "inputs" / "models" / name
    for name in ("lif_mace.pt", "lif_deepmd.pth")
]


def check_partition_energies(
    workdir: Path, template, potential: Potential, n_images: int, tol_eV: float
) -> None:
    """Each replica's NEB energy (first and last step) equals a one-process LAMMPS evaluation."""
    first, last = partition_energies_eV(workdir)
    assert len(first) == len(last) == n_images
    images = []
    for k in range(n_images):
        for positions in (
            read_coords_A(workdir / f"coords.{k}"),
            read_dump_positions_A(workdir / f"final.{k}.dump"),
        ):
            im = template.copy()
            im.positions = positions
            images.append(im)
    single = evaluate_many(images, potential)  # one process, one model load
    for k in range(n_images):
        assert abs(single[2 * k] - first[k]) < tol_eV, (k, single[2 * k], first[k])
        assert abs(single[2 * k + 1] - last[k]) < tol_eV, (k, single[2 * k + 1], last[k])


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


def _skip_unless_runnable(model: Path) -> None:
    from ionmd.plugin import plugin_path

    if shutil.which("mpirun") is None or shutil.which("lmp") is None:
        pytest.skip("mpirun or lmp not on PATH")
    if not model.is_file():
        pytest.skip(f"bundled model {model} is absent")
    if plugin_path() is None:
        pytest.skip("the ionmd plugin (pair_style mlip/torch) is not built")


def test_lif_interstitial_neb_mlip_torch_three_partitions(tmp_path):
    """MACE: LiF direct hop on 3 partitions through :func:`run_case` (the demo API), then resumed."""
    model = MODELS[0]
    _skip_unless_runnable(model)
    # 65 atoms: a plumbing test, not a reported barrier
    r = run_case(
        model,
        "direct",
        tmp_path,
        n_cells=2,
        n_images=3,
        ftol_eV_A=0.05,
        n_steps=200,
        climb_steps=200,
        timeout_s=600,
    )
    initial, _ = lif_case("direct", n_cells=2)
    pot = Potential.from_model(model, ["Li", "F"])
    check_partition_energies(tmp_path, initial, pot, 3, tol_eV=1e-3)
    assert r.n_images == 3 and len(r.energies_eV) == 3 and r.n_atoms == 65
    assert r.case == "direct" and r.n_cells == 2 and r.model_sha256 == file_sha256(model)
    assert "2x2x2" in r.cell and "do not report" in r.message
    e = np.array(r.energies_eV)
    assert e[1] > max(e[0], e[2])  # the middle image is a barrier top between two minima
    assert r.converged, r.summary()
    assert 0.0 < r.barrier_forward_eV < 1.0
    # the barrier is the top image's energy above the initial one (log's EBF vs PE columns)
    assert r.barrier_forward_eV == pytest.approx(e.max() - e[0], abs=2e-4)
    # resuming returns the stored converged result without running LAMMPS again
    (tmp_path / "log.lammps").unlink()
    again = run_case(model, "direct", tmp_path, n_cells=2, n_images=3, ftol_eV_A=0.05)
    assert again.barrier_forward_eV == r.barrier_forward_eV
    assert not (tmp_path / "log.lammps").exists()


def test_deepmd_partitions_evaluate_like_one_process(tmp_path):
    """DeePMD (whose own LAMMPS pair style breaks on partitions): 3 partitions, a short band."""
    model = MODELS[1]
    _skip_unless_runnable(model)
    initial, final = lif_case("direct", n_cells=2)
    pot = Potential.from_model(model, ["Li", "F"])
    r = run_neb(
        initial,
        final,
        pot,
        tmp_path,
        n_images=3,
        settings=NEBSettings(n1_steps=20, n2_steps=0),
        relax=False,
        timeout_s=600,
    )
    check_partition_energies(tmp_path, initial, pot, 3, tol_eV=1e-3)
    # unrelaxed end points are symmetric images: equal energies; the middle image is higher
    e = np.array(r.energies_eV)
    assert abs(e[2] - e[0]) < 1e-3 and e[1] > e[0] + 0.05
