"""Train (or warm-start) the committee and evaluate it on held-out frames.

Member *k* of iteration *i* trains with seed ``seed + k`` through
:func:`ionmd.models.fit.fit_mace` (or ``fit_deepmd``) in
``iter.i/train/member{k}/``, and is exported for ``pair_style mlip/torch`` as
``iter.i/train/member{k}.pt`` (DeePMD: ``.pth``). Different seeds give different
initial weights and different train/validation splits, hence a committee that
disagrees where the data are thin.

Warm start (MACE): from iteration 1 on, member *k* fine-tunes from member *k* of
the previous iteration (mace's ``--foundation_model``) for ``warm_epochs``
epochs. DeePMD members are retrained from scratch (ionmd's ``fit_deepmd`` has no
warm start).

A member whose exported model exists is not retrained, so an interrupted
training resumes at the next member.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ionmd.models.fit import fit_deepmd, fit_mace, rmse_metrics


def member_paths(train_dir: Path, k: int, family: str) -> tuple[Path, Path]:
    """Return (checkpoint, exported model) paths of member ``k``."""
    work = train_dir / f"member{k}" / "member0"
    if family == "deepmd":
        return work / "frozen.pth", train_dir / f"member{k}.pth"
    return work / "mace.model", train_dir / f"member{k}.pt"


def train_committee(data: Path, train_dir: Path, model: dict[str, Any],
                    previous: Path | None = None) -> list[Path]:
    """Train the committee on ``data``; return the exported models (member 0 first).

    Parameters
    ----------
    data
        Labelled extended XYZ (with ``DATA.e0.json`` beside it when known).
    train_dir
        ``iter.NNN/train``.
    model
        The validated ``[model]`` table.
    previous
        The previous iteration's ``train`` directory, for a warm start.
    """
    from ionmd.models.export import export_model

    family = model["family"]
    train_dir.mkdir(parents=True, exist_ok=True)
    exported = []
    for k in range(int(model["committee"])):
        ckpt, out = member_paths(train_dir, k, family)
        if out.is_file():
            exported.append(out)
            continue
        work = train_dir / f"member{k}"
        if work.exists():
            shutil.rmtree(work)  # a member cut short: train it again
        seed = int(model["seed"]) + k
        if family == "deepmd":
            fit_deepmd(data, work, size=model["size"], committee=1, seed=seed,
                       steps=model["epochs"], dp_env=model["dp_env"])
        else:
            warm = None
            if previous is not None and model["warm_start"]:
                prev_ckpt, _ = member_paths(previous, k, family)
                warm = prev_ckpt.resolve() if prev_ckpt.is_file() else None
            epochs = model["warm_epochs"] if warm is not None and model["warm_epochs"] else \
                model["epochs"]
            fit_mace(data, work, size=model["size"], committee=1, seed=seed, epochs=epochs,
                     dtype=model["dtype"], batch_size=model["batch_size"], foundation=warm,
                     multihead=False)  # a warm start continues one head, no replay
        export_model(ckpt, out.with_suffix(out.suffix + ".tmp"), dtype=model["export_dtype"])
        out.with_suffix(out.suffix + ".tmp").replace(out)
        exported.append(out)
    (train_dir / "committee.json").write_text(json.dumps(
        {"family": family, "models": [str(p) for p in exported],
         "checkpoints": [str(member_paths(train_dir, k, family)[0])
                         for k in range(len(exported))]}, indent=2) + "\n")
    return exported


def predict_mace(checkpoint: Path, frames: Sequence[Atoms], dtype: str = "float64"
                 ) -> tuple[list[float], np.ndarray]:
    """Return (energies in eV, stacked forces in eV/Å) of a MACE checkpoint on ``frames``."""
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=str(checkpoint), device="cpu", default_dtype=dtype)
    energies, forces = [], []
    for atoms in frames:
        work = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell,
                     pbc=atoms.pbc)
        work.calc = calc
        energies.append(float(work.get_potential_energy()))
        forces.append(np.asarray(work.get_forces()))
    return energies, np.concatenate(forces)


def heldout_errors(train_dir: Path, model: dict[str, Any], test: Sequence[Atoms]
                   ) -> dict[str, Any]:
    """Return held-out energy (meV/atom) and force (meV/Å) RMSE of every member against the labels.

    The keys ``test_energy_rmse_meV_atom`` and ``test_force_rmse_meV_A`` are the
    mean over members; ``member_...`` lists hold each member's value. Without
    held-out frames (or for DeePMD), the members' own test-split errors from
    ``fit.json`` are reported instead (``test_source`` says which).
    """
    family = model["family"]
    n = int(model["committee"])
    e_list, f_list = [], []
    if test and family == "mace":
        ref_E = [float(a.calc.results["energy"]) for a in test]
        ref_F = np.concatenate([np.asarray(a.calc.results["forces"]) for a in test])
        for k in range(n):
            ckpt, _ = member_paths(train_dir, k, family)
            pred_E, pred_F = predict_mace(ckpt, test, model["dtype"])
            e, f = rmse_metrics(ref_E, pred_E, [len(a) for a in test], ref_F, pred_F)
            e_list.append(e)
            f_list.append(f)
        source = f"held-out set ({len(test)} frames)"
    else:
        for k in range(n):
            fit = json.loads((train_dir / f"member{k}" / "fit.json").read_text())
            e_list.append(float(fit["test_energy_rmse_meV_atom"]))
            f_list.append(float(fit["test_force_rmse_meV_A"]))
        source = "each member's own test split (fit.json)"
    return {"test_energy_rmse_meV_atom": float(np.mean(e_list)),
            "test_force_rmse_meV_A": float(np.mean(f_list)),
            "member_test_energy_rmse_meV_atom": e_list,
            "member_test_force_rmse_meV_A": f_list, "test_source": source}
