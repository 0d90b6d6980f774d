"""Does active learning beat random selection with the same label budget?

After a learning run whose last committee was trained on ``N_init + N_al``
frames, :func:`run_random_baseline` draws ``N_al`` frames uniformly at random
from every frame that the labelled iterations explored (the pool active
learning chose from), labels them, and fits two models from scratch with the
same settings, seed and number of epochs (``epochs + warm_epochs x iterations``,
the learning run's total): one on the initial + actively selected frames, one on
the initial + random frames. Both are scored on the held-out frames. The result
is ``<work_dir>/baseline.json`` with a plain verdict, whichever way it goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read, write

from ionmd.errors import InputError
from ionmd.learn.config import LearnConfig
from ionmd.learn.dataset import extend_set
from ionmd.learn.explore import collect_frames
from ionmd.learn.state import load_state, write_json_atomic
from ionmd.learn.train import predict_mace
from ionmd.models.fit import fit_mace, rmse_metrics


def _fit_and_score(data: Path, out: Path, model: dict[str, Any], epochs: int, test: list
                   ) -> dict[str, Any]:
    ckpt = out / "member0" / "mace.model"
    if not (out / "fit.json").is_file():
        fit_mace(data, out, size=model["size"], committee=1, seed=int(model["seed"]),
                 epochs=epochs, dtype=model["dtype"], batch_size=model["batch_size"])
    ref_E = [float(a.calc.results["energy"]) for a in test]
    ref_F = np.concatenate([np.asarray(a.calc.results["forces"]) for a in test])
    pred_E, pred_F = predict_mace(ckpt, test, model["dtype"])
    e, f = rmse_metrics(ref_E, pred_E, [len(a) for a in test], ref_F, pred_F)
    return {"data": str(data), "n_train_frames": len(read(data, index=":")),
            "test_energy_rmse_meV_atom": e, "test_force_rmse_meV_A": f}


def run_random_baseline(config: LearnConfig, seed: int = 12345, iteration: int | None = None
                        ) -> dict[str, Any]:
    """Compare active and random selection at the same label budget; write ``baseline.json``.

    ``iteration`` picks the committee whose training set is compared (default:
    the last trained one); it must be >= 1.

    Raises
    ------
    InputError
        If the run has no held-out frames, is not MACE, or labelled nothing yet.
    """
    from ionmd.models.label import label_frames

    work = config.work_dir
    if config.model["family"] != "mace":
        raise InputError(f"{config.path}: key 'model.family': the random baseline supports mace only")
    heldout = work / "heldout.extxyz"
    if not heldout.is_file():
        raise InputError(f"{config.path}: key 'data.test_count': the random baseline needs "
                         "held-out frames (data.test or data.test_count)")
    test = read(heldout, index=":")
    state = load_state(work)
    trained = [it for it in state.iterations if it.steps["train"].status == "done"]
    if iteration is not None:
        trained = [it for it in trained if it.index <= iteration]
    if len(trained) < 2:
        raise InputError(f"{work}: the random baseline needs a learning run with at least "
                         "two trained iterations")
    last = trained[-1]
    n_init = int(state.iterations[0].stats["n_train_frames"])
    n_add = int(last.stats["n_train_frames"]) - n_init
    pool = []
    for it in state.iterations[: last.index]:
        pool += collect_frames(work / it.dir / "explore")[1]
    out = work / "baseline" / last.dir
    rnd = out / f"random{seed}"
    rnd.mkdir(parents=True, exist_ok=True)
    if not (rnd / "selected.extxyz").is_file():
        picked = sorted(np.random.default_rng(seed).choice(len(pool), size=n_add, replace=False))
        write(rnd / "selected.extxyz", [pool[i] for i in picked], format="extxyz")
    label_frames(rnd / "selected.extxyz", rnd / "labelled.extxyz",
                 config.labeller["calculator"], elements=config.data["elements"])
    extend_set(work / state.iterations[0].dir / "data" / "train.extxyz",
               rnd / "labelled.extxyz", rnd / "train.extxyz", config.labeller["calculator"])
    epochs = int(config.model["epochs"] or 0) + \
        int(config.model["warm_epochs"] or config.model["epochs"] or 0) * last.index
    active_data = work / last.dir / "data" / "train.extxyz"
    result: dict[str, Any] = {
        "iteration": last.index, "n_initial": n_init, "n_added": n_add,
        "pool_frames": len(pool), "epochs": epochs, "seed": seed, "n_heldout": len(test),
        "active": _fit_and_score(active_data, out / "active_fit", config.model, epochs, test),
        "random": _fit_and_score(rnd / "train.extxyz", rnd / "fit", config.model, epochs, test),
    }
    fa = result["active"]["test_force_rmse_meV_A"]
    fr = result["random"]["test_force_rmse_meV_A"]
    result["active_beats_random"] = bool(fa < fr)
    result["verdict"] = (
        f"With {n_add} added labels, active selection gives a held-out force RMSE of {fa:.1f} "
        f"meV/Å and random selection {fr:.1f} meV/Å: active learning "
        + ("beats" if fa < fr else "does NOT beat") + " random selection here "
        f"(random draw {seed}; both refitted from scratch with the same settings and seed).")
    write_json_atomic(rnd / "baseline.json", result)
    write_json_atomic(work / "baseline.json", result)
    return result
