"""Multi-head fine-tuning of a MACE "foundation" model, head export, and LAMMPS runs.

A six-element foundation (Li Na K F Cl Br, tiny, 2 epochs on Lennard-Jones-labelled
mixed rock-salt cells) is trained in the test itself, fine-tuned on LiF frames with
a different LJ labeller (multi-head, the foundation frames replayed), exported
(plain and --halo) with the default head, and run in LAMMPS on 1 and 2 ranks with
``pair_coeff * * Li F``: energies and forces equal mace's calculator on the
fine-tuned head.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from conftest import lif_interstitial, lif_small
from lammps_runner import run_lammps

from ionmd.errors import InputError
from ionmd.models.export import export_model
from ionmd.models.fit import fit_mace

pytestmark = pytest.mark.skipif(shutil.which("mace_run_train") is None, reason="needs mace-torch")

FOUNDATION_ELEMENTS = ["Li", "F", "Na", "Cl", "K", "Br"]


def _label(frames, sigma_A: float, path):
    calc = LennardJones(sigma=sigma_A, epsilon=0.05, rc=4.0, smooth=True)
    out = []
    for atoms in frames:
        atoms.calc = calc
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        out.append(atoms)
    write(path, out, format="extxyz")
    return path


def _foundation_frames(n: int = 12):
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = bulk("NaCl", "rocksalt", a=rng.uniform(4.0, 4.6), cubic=True)
        symbols = [
            rng.choice(["Li", "Na", "K"]) if s == "Na" else rng.choice(["F", "Cl", "Br"])
            for s in atoms.get_chemical_symbols()
        ]
        atoms.set_chemical_symbols(symbols)
        atoms.rattle(0.08, seed=k)
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """(fit result, replay file) of a multi-head fine-tuning of a small six-element foundation."""
    root = tmp_path_factory.mktemp("finetune")
    replay = _label(_foundation_frames(), 1.8, root / "foundation_frames.xyz")
    base = fit_mace(replay, root / "foundation", size="tiny", epochs=2, stage_two=False,
                    batch_size=4)
    foundation = base.members[0].model
    lif = _label([lif_small(seed=s) for s in range(8)], 1.9, root / "lif.xyz")
    result = fit_mace(lif, root / "ft", foundation=foundation, replay_data=replay, epochs=2,
                      stage_two=False, batch_size=4,
                      extra_args=("--force_mh_ft_lr", "True"))  # lr 0.01: heads move apart in 2 epochs
    return result, foundation


def test_multihead_finetune_keeps_foundation_elements_and_two_heads(finetuned):
    result, foundation = finetuned
    info = json.loads((Path(result.out_dir) / "fit.json").read_text())["finetune"]
    assert info["mode"] == "multihead"
    assert info["heads"] == ["pt_head", "Default"]
    assert info["default_head"] == "Default"
    assert sorted(info["elements"]) == sorted(FOUNDATION_ELEMENTS)
    assert result.e0_source in ("foundation", "labeller isolated atoms")
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    model = torch.load(result.members[0].model, map_location="cpu", weights_only=False)
    assert list(model.heads) == ["pt_head", "Default"]


@pytest.mark.parametrize("halo", [False, True])
def test_finetuned_head_in_lammps_with_subset_pair_coeff(finetuned, tmp_path, halo):
    from mace.calculators import MACECalculator

    result, _ = finetuned
    model = result.members[0].model
    out = tmp_path / "ft.pt"
    exported = export_model(model, out, dtype="float64", halo=halo)
    assert exported.extra["head"] == "Default"
    meta = json.loads(_read_meta(out))
    assert meta["head"] == "Default" and meta["heads"] == ["pt_head", "Default"]
    assert len(meta["species"]) == len(FOUNDATION_ELEMENTS)

    atoms = lif_interstitial()
    ref = atoms.copy()
    ref.calc = MACECalculator(model_paths=model, device="cpu", default_dtype="float64",
                              head="Default")
    e_ref, f_ref = ref.get_potential_energy(), ref.get_forces()
    other = atoms.copy()
    other.calc = MACECalculator(model_paths=model, device="cpu", default_dtype="float64",
                                head="pt_head")
    # the heads differ, so agreement below says the right head was exported
    assert abs(other.get_potential_energy() - e_ref) > 1e-3

    # two of the model's six elements; the types in either order (species mapped by symbol)
    for ranks, types in ((1, ["Li", "F"]), (2, ["F", "Li"])):
        res = run_lammps(atoms, f"pair_style mlip/torch {out}", types, tmp_path / f"r{ranks}",
                         ranks=ranks, pair_coeff="pair_coeff * * " + " ".join(types))
        assert abs(res.energy_eV - e_ref) < 1e-6, (ranks, res.energy_eV, e_ref)
        assert np.abs(res.forces_eV_A - f_ref).max() < 1e-6, ranks


def _read_meta(path) -> str:
    extra = {"ionmd.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    return extra["ionmd.json"]


def test_export_unknown_head_names_the_heads(finetuned, tmp_path):
    result, _ = finetuned
    with pytest.raises(InputError, match="--head nohead: .* has the heads pt_head, Default"):
        export_model(result.members[0].model, tmp_path / "x.pt", head="nohead")


def test_multihead_needs_replay_data(finetuned, tmp_path):
    _, foundation = finetuned
    lif = _label([lif_small(seed=s) for s in range(4)], 1.9, tmp_path / "lif.xyz")
    with pytest.raises(InputError, match="--replay-data FILE.*--no-multihead"):
        fit_mace(lif, tmp_path / "o", foundation=foundation)
    with pytest.raises(InputError, match="--replay-data mp: mace would download"):
        fit_mace(lif, tmp_path / "o", foundation=foundation, replay_data="mp")


def test_finetune_refuses_elements_the_foundation_lacks(finetuned, tmp_path):
    _, foundation = finetuned
    frames = [bulk("Cu", "fcc", a=3.6, cubic=True) for _ in range(3)]
    for k, a in enumerate(frames):
        a.rattle(0.05, seed=k)
    data = _label(frames, 1.9, tmp_path / "cu.xyz")
    with pytest.raises(InputError, match="does not know Cu"):
        fit_mace(data, tmp_path / "o", foundation=foundation, replay_data=data)


def test_cli_fine_tuning_options(finetuned, tmp_path):
    import argparse

    from ionmd.models.cli import register

    parser = argparse.ArgumentParser(prog="ionmd")
    register(parser.add_subparsers(dest="command"))
    result, foundation = finetuned
    lif = _label([lif_small(seed=s) for s in range(4)], 1.9, tmp_path / "lif.xyz")
    for argv, message in (
        (["fit", "mace", str(lif), "-o", str(tmp_path / "o"), "--foundation", foundation],
         "needs replay data .*--replay-data FILE"),
        (["fit", "mace", str(lif), "-o", str(tmp_path / "o"), "--replay-data", str(lif)],
         "--replay-data applies to fine-tuning only"),
        (["fit", "deepmd", str(lif), "-o", str(tmp_path / "o"), "--no-multihead"],
         "--no-multihead apply to `ionmd fit mace --foundation` only"),
        (["export", result.members[0].model, "-o", str(tmp_path / "x.pt"), "--head", "nohead"],
         "--head nohead: .* has the heads pt_head, Default"),
    ):
        args = parser.parse_args(argv)
        with pytest.raises(InputError, match=message):
            args.func(args)


def test_no_multihead_is_plain_single_head_finetuning(finetuned, tmp_path):
    _, foundation = finetuned
    lif = _label([lif_small(seed=s) for s in range(8)], 1.9, tmp_path / "lif.xyz")
    result = fit_mace(lif, tmp_path / "plain", foundation=foundation, multihead=False, epochs=1,
                      stage_two=False, batch_size=4)
    assert result.finetune["mode"] == "plain" and result.finetune["replay_data"] is None
    assert result.finetune["heads"] == ["Default"]
    assert np.isfinite(result.test_force_rmse_meV_A)
    assert not (tmp_path / "plain" / "replay.xyz").exists()
