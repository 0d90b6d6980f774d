"""AOTInductor ``.pt2`` MACE packages (``ionmd export --format pt2``) in pair_style mlip/torch.

A small MACE model with random weights (built here, so that the AOTInductor
compile stays under a minute) is exported as TorchScript and as ``.pt2``; LAMMPS
must give the same energies, forces, per-atom energies and virials with both, to
1e-10 in float64, on 1, 2 and 4 ranks (fold and ghost-shell graphs, ranks
without atoms), and match mace's own calculator. A package holds a graph with
the virial and one without; short MD runs check that the pair style switches
between them correctly (pressure on thermo steps only, forces on every step).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import zipfile

import numpy as np
import pytest
from conftest import BUNDLED_MACE_CHECKPOINT, lif_interstitial, lif_small, lif_triclinic
from lammps_runner import EV_PER_A3_TO_BAR, lower_triangular, run_lammps, write_data

SPECIES = ["Li", "F"]


def small_mace(path, seed: int = 0):
    """A 2-layer MACE of the bundled model's architecture, 4 scalar channels, random weights."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import mace  # noqa: F401
    import torch
    from e3nn import o3
    from mace.tools.scripts_utils import extract_config_mace_model

    bundled = torch.load(BUNDLED_MACE_CHECKPOINT, map_location="cpu", weights_only=False)
    config = extract_config_mace_model(bundled)
    config.update(hidden_irreps=o3.Irreps("4x0e"), MLP_irreps=o3.Irreps("4x0e"), max_ell=1,
                  radial_MLP=[8], num_bessel=4)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        model = bundled.__class__(**config)
    finally:
        torch.set_default_dtype(previous)
    torch.save(model, path)
    return path


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    """(checkpoint, TorchScript export, .pt2 export, pt2 ExportResult, compile seconds)."""
    from ionmd.models.export import export_model

    d = tmp_path_factory.mktemp("pt2")
    ckpt = small_mace(d / "small.model")
    ts = d / "small64.pt"
    export_model(ckpt, ts, dtype="float64")
    pt2 = d / "small64.pt2"
    t0 = time.perf_counter()
    result = export_model(ckpt, pt2, fmt="pt2")  # dtype: the checkpoint's own (float64)
    seconds = time.perf_counter() - t0
    print(f"\n.pt2 export of the small MACE: {seconds:.0f} s ({result.extra})")
    return ckpt, ts, pt2, result, seconds


def test_pt2_export_records_metadata(small_models):
    import torch

    _, _, pt2, result, _ = small_models
    assert result.dtype == "float64" and result.extra["format"] == "pt2"
    assert result.max_energy_error_eV_per_atom <= 1e-10 and result.max_force_error_eV_A <= 1e-10
    meta = torch._inductor.aoti_load_package(str(pt2)).get_metadata()
    assert meta["ionmd.species"] == "Li,F" and float(meta["ionmd.cutoff_A"]) == 4.0
    assert meta["ionmd.num_layers"] == "2" and meta["ionmd.dtype"] == "float64"
    assert meta["ionmd.torch_version"] == torch.__version__ and meta["ionmd.device_type"] == "cpu"


CASES = [
    # (structure, ranks, extra pair_style words, processors grid)
    (lif_interstitial, 1, "", None),            # fold
    (lif_interstitial, 1, "mode shell", None),  # ghost shell on one rank
    (lif_triclinic, 2, "", None),               # ghost shell on two ranks
    (lif_small, 4, "", "4 1 1"),                # ranks without atoms: padded inputs
]


@pytest.mark.parametrize(("structure", "ranks", "words", "grid"), CASES)
def test_pt2_equals_torchscript(structure, ranks, words, grid, small_models, tmp_path):
    _, ts, pt2, _, _ = small_models
    atoms = lower_triangular(structure())
    a = run_lammps(atoms, f"pair_style mlip/torch {ts} {words}", SPECIES, tmp_path / "ts",
                   ranks=ranks, processors=grid)
    b = run_lammps(atoms, f"pair_style mlip/torch {pt2} {words}", SPECIES, tmp_path / "pt2",
                   ranks=ranks, processors=grid)
    n = len(atoms)
    assert abs(a.energy_eV - b.energy_eV) / n < 1e-10
    assert np.abs(a.forces_eV_A - b.forces_eV_A).max() < 1e-10
    assert np.abs(a.atom_energy_eV - b.atom_energy_eV).max() < 1e-10
    assert np.abs(a.pressure_bar - b.pressure_bar).max() < 1e-10 * EV_PER_A3_TO_BAR
    assert abs(a.energy_eV) > 1.0 and np.abs(a.forces_eV_A).max() > 1e-3  # a real test case


def _md_run(atoms, model, workdir, ranks: int, thermo_every: int, steps: int = 6):
    """(thermo rows [step, pe, pxx..pyz], forces by step [steps+1, n, 3]) of a short NVE run."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_data(atoms, workdir / "system.data", SPECIES)
    (workdir / "in.md").write_text(
        "units metal\natom_style atomic\nread_data system.data\n"
        f"pair_style mlip/torch {model}\npair_coeff * * Li F\n"
        "velocity all create 600 1 mom yes rot no\nfix 1 all nve\ntimestep 0.001\n"
        "thermo_style custom step pe pxx pyy pzz pxy pxz pyz\n"
        "thermo_modify format float %.16e\n"
        f"thermo {thermo_every}\n"
        "dump d all custom 1 forces.dump id fx fy fz\n"
        "dump_modify d sort id format float %.16e\n"
        f"run {steps}\n"
        'print "THERMO_END"\n'
    )
    cmd = ["lmp", "-in", "in.md", "-log", "log.lammps"]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), *cmd]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rows = []
    for line in proc.stdout.splitlines():
        words = line.split()
        if len(words) == 8 and words[0].isdigit():
            with contextlib.suppress(ValueError):  # other 8-word lines of the log
                rows.append([float(w) for w in words])
    n = len(atoms)
    lines = (workdir / "forces.dump").read_text().splitlines()
    frames = [np.array([[float(w) for w in line.split()[1:]] for line in lines[k + 9:k + 9 + n]])
              for k in range(0, len(lines), n + 9)]
    return np.array(rows), np.array(frames)


@pytest.mark.parametrize(("ranks", "thermo_every"), [(1, 1), (1, 3), (2, 4)])
def test_pt2_md_virial_steps(ranks, thermo_every, small_models, tmp_path):
    """Pressure only on thermo steps: the forces-only graph between them, the virial graph on them."""
    _, ts, pt2, _, _ = small_models
    atoms = lower_triangular(lif_interstitial())
    thermo_a, forces_a = _md_run(atoms, ts, tmp_path / "ts", ranks, thermo_every)
    thermo_b, forces_b = _md_run(atoms, pt2, tmp_path / "pt2", ranks, thermo_every)
    assert thermo_a[:, 0].tolist() == list(range(0, 7, thermo_every)) + ([6] if 6 % thermo_every else [])
    assert forces_a.shape == forces_b.shape == (7, len(atoms), 3)
    assert np.abs(forces_a - forces_b).max() < 1e-10
    assert np.abs(thermo_a[:, 1] - thermo_b[:, 1]).max() / len(atoms) < 1e-10
    assert np.abs(thermo_a[:, 2:] - thermo_b[:, 2:]).max() < 1e-10 * EV_PER_A3_TO_BAR
    assert np.abs(thermo_a[:, 2:]).max() > 1.0  # real pressures, not zeros from a graph without them


def test_pt2_package_has_both_graphs(small_models):
    """The forces-only graph equals the virial graph's energy and forces, and returns no virial."""
    import torch

    from ionmd.models import export_pt2

    _, _, pt2, _, _ = small_models
    args = export_pt2.example_inputs(9, 40, 2, torch.float64, seed=3)
    full = export_pt2.load_package(pt2, export_pt2.MODEL_VIRIAL)(*args)
    short = export_pt2.load_package(pt2, export_pt2.MODEL_FORCES)(*args)
    assert len(full) == 4 and len(short) == 3
    assert abs(float(full[1]) - float(short[1])) < 1e-12
    assert torch.abs(full[2] - short[2]).max() < 1e-12 and torch.abs(full[2]).max() > 1e-3


def test_pt2_matches_mace_calculator(small_models, tmp_path):
    from mace.calculators import MACECalculator

    ckpt, _, pt2, _, _ = small_models
    atoms = lower_triangular(lif_triclinic())
    ref = atoms.copy()
    ref.calc = MACECalculator(model_paths=str(ckpt), device="cpu", default_dtype="float64")
    res = run_lammps(atoms, f"pair_style mlip/torch {pt2}", SPECIES, tmp_path)
    assert abs(res.energy_eV - ref.get_potential_energy()) / len(atoms) < 1e-10
    assert np.abs(res.forces_eV_A - ref.get_forces()).max() < 1e-10
    s = ref.get_stress(voigt=False)
    p_ref = -EV_PER_A3_TO_BAR * np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]])
    assert np.abs(res.pressure_bar - p_ref).max() < 1e-10 * EV_PER_A3_TO_BAR


def _with_metadata(src, dst, key: str, value: str):
    """Copy of the package ``src`` with one metadata value changed."""
    import json

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("_metadata.json"):
                meta = json.loads(data)
                meta[key] = value
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    return dst


@pytest.mark.parametrize(("key", "value", "words"), [
    ("ionmd.torch_version", "2.11.0+cu126", "torch 2.11.0+cu126"),
    ("ionmd.device_type", "cuda", "on cuda"),
])
def test_pt2_mismatch_refused(key, value, words, small_models, tmp_path):
    _, _, pt2, _, _ = small_models
    other = _with_metadata(pt2, tmp_path / "other.pt2", key, value)
    res = run_lammps(lower_triangular(lif_small()), f"pair_style mlip/torch {other}", SPECIES,
                     tmp_path, check=False)
    assert words in res.log and "re-export it here with `ionmd export" in res.log
    assert "--format pt2 --dtype float64" in res.log and "small.model" in res.log


def test_training_checkpoint_named(tmp_path):
    res = run_lammps(lower_triangular(lif_small()),
                     f"pair_style mlip/torch {BUNDLED_MACE_CHECKPOINT}", SPECIES, tmp_path,
                     check=False)
    assert "MACE training checkpoint" in res.log and "convert it with `ionmd export" in res.log
    assert "corrupted" not in res.log


def test_halo_export_keeps_exchange_ops(tmp_path):
    """The halo module traces into an exported graph that keeps ionmd::halo_forward/halo_reverse.

    Run in Python (index-copy exchange, no LAMMPS), on sizes other than the traced
    ones, it equals the TorchScript-path halo module's energies and edge gradients.
    """
    import torch

    from ionmd.models import export_pt2, mace_halo

    model = torch.load(small_mace(tmp_path / "small.model"), weights_only=False)
    program, _ = export_pt2.trace_halo(model, torch.float64)
    ops = {str(node.target) for node in program.graph.nodes if "ionmd" in str(node.target)}
    assert ops == {"ionmd.halo_forward.default", "ionmd.halo_reverse.default"}
    eager = mace_halo.build_halo_module(export_pt2.rebuild_for_export(model))
    args = export_pt2.halo_example_inputs(7, 3, 29, 2, torch.float64, seed=5)
    node_energy, energy, grad = program.module()(*args)
    vectors = args[1].clone().requires_grad_(True)
    ref = eager(args[0], vectors, args[2], args[3])
    (ref_grad,) = torch.autograd.grad(ref.sum(), [vectors])
    assert torch.abs(node_energy - ref.detach()).max() < 1e-12
    assert abs(float(energy) - float(ref.sum())) < 1e-12
    assert torch.abs(grad - ref_grad).max() < 1e-12 and torch.abs(ref_grad).max() > 1e-3
