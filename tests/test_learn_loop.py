"""End-to-end active learning on a tiny LiF setup (``ionmd.learn``).

The labeller is a classical short-range Buckingham potential for LiF run by
LAMMPS (``ionmd label --calculator lammps:...``), the committee two tiny MACE
models trained for a few epochs, the exploration 100 steps of 8-atom LiF at
300 K with two seeds. One run of two iterations is killed in the middle of
iteration 1's training (the second member's fit raises) and resumed; the tests
then check the state on disk against independent recomputation: the deviation
files, the labeller's energies and forces, the training sets and the models.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.io import read, write

import ionmd.learn.train as learn_train
from ionmd.cli import main as ionmd_main
from ionmd.driver.structure import make_structure
from ionmd.errors import InputError
from ionmd.learn.config import load_learn_config
from ionmd.learn.explore import read_deviation
from ionmd.learn.loop import run_learning
from ionmd.learn.select import classify
from ionmd.learn.state import load_state
from ionmd.models.calculators import make_calculator
from ionmd.models.label import label_frames

BUCK = ("lammps:buck 5.0;1 1 0.0 0.1 0.0;1 2 426.480 0.3000 0.0;"
        "2 2 1127.7 0.2753 15.83")
LO, HI, BUDGET = 0.01, 5.0, 3

CONFIG = f"""
name = "tiny"
[data]
initial = "init.extxyz"
initial_count = 7
test_count = 3
[labeller]
calculator = "{BUCK}"
[model]
size = "tiny"
committee = 2
epochs = 2
warm_epochs = 1
[explore]
structure = "lif8.data"
temperatures_K = [300]
seeds = [1, 2]
n_equil = 0
n_prod = 60
every = 10
[select]
lo_eV_A = {LO}
hi_eV_A = {HI}
budget = {BUDGET}
[stop]
max_iterations = 2
"""


class SimulatedKill(BaseException):
    """Stands for SIGKILL in the middle of a step (not an Exception, like KeyboardInterrupt)."""


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """Run two iterations, killed during iteration 1's second fit, then resumed."""
    tmp = tmp_path_factory.mktemp("learn")
    frames = []
    for i in range(10):
        atoms = bulk("LiF", "rocksalt", a=4.03, cubic=True)
        atoms.rattle(0.08, seed=i)
        frames.append(atoms)
    write(tmp / "raw.extxyz", frames)
    label_frames(tmp / "raw.extxyz", tmp / "init.extxyz", BUCK)
    make_structure(tmp / "lif8.data", supercell=1)
    (tmp / "learn.toml").write_text(CONFIG)
    config = load_learn_config(tmp / "learn.toml")

    calls: list[tuple[str, int]] = []
    real_fit = learn_train.fit_mace

    def fit_then_kill(data, out, **kw):
        calls.append((str(Path(out).relative_to(config.work_dir)), kw.get("seed")))
        if len(calls) == 4:  # iteration 1, member 1: killed while training
            raise SimulatedKill("killed during training")
        return real_fit(data, out, **kw)

    mtimes = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(learn_train, "fit_mace", fit_then_kill)
        with pytest.raises(SimulatedKill):
            run_learning(config, printer=lambda _: None)
        killed = load_state(config.work_dir)
        for path in config.work_dir.rglob("*"):
            if path.is_file():
                mtimes[str(path.relative_to(config.work_dir))] = path.stat().st_mtime_ns
        with pytest.raises(InputError, match="--resume"):
            run_learning(config, printer=lambda _: None)
        state = run_learning(config, resume=True, printer=lambda _: None)
    return {"config": config, "work": config.work_dir, "killed": killed, "state": state,
            "calls": calls, "mtimes": mtimes}


def _iter(work: Path, i: int) -> Path:
    return work / f"iter.{i:03d}"


def test_two_iterations_state_on_disk(learned):
    work, state = learned["work"], learned["state"]
    assert state.status == "max_iterations"
    assert [it.index for it in state.iterations] == [0, 1]
    assert all(s.status == "done" for s in state.iterations[0].steps.values())
    assert state.iterations[1].steps["label"].status == "skipped"
    on_disk = json.loads((work / "learn_state.json").read_text())
    assert on_disk["status"] == "max_iterations"

    for i in (0, 1):
        # Frame classes agree with the deviation files and lo/hi.
        sel = json.loads((_iter(work, i) / "select" / "frames.json").read_text())
        index = json.loads((_iter(work, i) / "explore" / "sweep.json").read_text())
        assert {r["status"] for r in index["runs"]} == {"done"}  # the exported models ran
        devi = {r["id"]: read_deviation(_iter(work, i) / "explore" / r["dir"] / "model_devi.out")
                for r in index["runs"]}
        dumped = {r["id"]: sum(1 for line in open(_iter(work, i) / "explore" / r["dump"])
                               if line.startswith("ITEM: TIMESTEP")) for r in index["runs"]}
        assert len(sel["frames"]) == sum(dumped.values()) == 2 * 7  # steps 0, 10, ..., 60
        for frame in sel["frames"]:
            d = devi[frame["run"]][frame["step"]]
            assert frame["max_devi_f_eV_A"] == pytest.approx(d, rel=1e-12)
            expected = "accurate" if d < LO else ("candidate" if d < HI else "failed")
            assert frame["class"] == expected
        classes = [f["class"] for f in sel["frames"]]
        assert classes == classify([f["max_devi_f_eV_A"] for f in sel["frames"]], LO, HI)
        stats = state.iterations[i].stats
        assert stats["candidate_fraction"] == pytest.approx(classes.count("candidate") / len(classes))
        selected = [f for f in sel["frames"] if f["selected"]]
        assert len(selected) == min(BUDGET, classes.count("candidate"))
        assert all(f["class"] == "candidate" for f in selected)

    # Iteration 0's labels: the selected frames with the labeller's energies and forces.
    selected = read(_iter(work, 0) / "select" / "selected.extxyz", index=":")
    labelled = read(_iter(work, 0) / "label" / "labelled.extxyz", index=":")
    assert len(labelled) == len(selected) == state.iterations[0].stats["n_labelled"] > 0
    labeller = make_calculator(BUCK, ["Li", "F"])
    for sel_atoms, lab in zip(selected, labelled, strict=True):
        np.testing.assert_allclose(lab.positions, sel_atoms.positions, atol=1e-8)
        ref = sel_atoms.copy()
        ref.calc = labeller.calc
        assert lab.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(lab.get_forces(), ref.get_forces(), atol=1e-6)

    # Iteration 1 trains on iteration 0's set plus those labels, appended.
    set0 = read(_iter(work, 0) / "data" / "train.extxyz", index=":")
    set1 = read(_iter(work, 1) / "data" / "train.extxyz", index=":")
    assert len(set0) == 7 and len(set1) == 7 + len(labelled)
    for a, b in zip(set1[7:], labelled, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-8)
    assert len(read(work / "heldout.extxyz", index=":")) == 3

    # Refitted (warm-started) members exist, load, and differ from iteration 0's.
    for k in (0, 1):
        new = torch.jit.load(str(_iter(work, 1) / "train" / f"member{k}.pt"))
        old = torch.jit.load(str(_iter(work, 0) / "train" / f"member{k}.pt"))
        old_params = dict(old.named_parameters())
        diff = [float((p - old_params[name]).abs().max())
                for name, p in new.named_parameters()
                if name in old_params and old_params[name].shape == p.shape]
        assert diff and max(diff) > 0
        log = (_iter(work, 1) / "train" / f"member{k}" / "member0" / "train.log").read_text()
        assert "foundation" in log.lower()
    for i in (0, 1):
        stats = state.iterations[i].stats
        assert len(stats["member_test_force_rmse_meV_A"]) == 2
        assert stats["test_force_rmse_meV_A"] == pytest.approx(
            np.mean(stats["member_test_force_rmse_meV_A"]))

    # `ionmd report DIR` recognises the learning directory.
    assert ionmd_main(["report", str(work)]) == 0
    table = (work / "learn_report.md").read_text()
    assert "| 0 | 7 | 14 |" in table and "| 1 |" in table
    assert (work / "learn_report.png").stat().st_size > 1000


def test_resume_after_kill_keeps_finished_steps(learned):
    work, killed, state = learned["work"], learned["killed"], learned["state"]
    # At the kill: iteration 0 complete, iteration 1 stopped in 'train' with the cause.
    assert killed.iterations[0].complete
    assert killed.iterations[1].steps["data"].status == "done"
    assert killed.iterations[1].steps["train"].status == "failed"
    assert "SimulatedKill" in killed.iterations[1].steps["train"].error
    assert killed.iterations[1].steps["explore"].status == "pending"
    # Fits: 2 members in iteration 0, member 0 then the killed member 1 in iteration 1,
    # and on resume only member 1 again (member 0's model was kept).
    assert [c[0] for c in learned["calls"]] == [
        "iter.000/train/member0", "iter.000/train/member1",
        "iter.001/train/member0", "iter.001/train/member1", "iter.001/train/member1"]
    assert [c[1] for c in learned["calls"]] == [0, 1, 0, 1, 1]
    before = learned["mtimes"]
    for name in ("iter.000/label/labelled.extxyz", "iter.000/train/member0.pt",
                 "iter.000/explore/sweep.json", "iter.001/data/train.extxyz",
                 "iter.001/train/member0.pt"):
        assert (work / name).stat().st_mtime_ns == before[name], name
    for name, step in killed.iterations[0].steps.items():
        assert state.iterations[0].steps[name] == step
    assert state.iterations[1].steps["data"].attempts == 1
    assert state.iterations[1].steps["train"].attempts == 2
    assert state.iterations[1].steps["train"].status == "done"
    assert state.iterations[1].steps["explore"].attempts == 1


def test_cli_check_and_refusal(learned, capsys):
    toml = learned["config"].path
    assert ionmd_main(["learn", str(toml), "--check"]) == 0
    assert "valid" in capsys.readouterr().out
    # A finished run resumed again does nothing and exits cleanly.
    assert ionmd_main(["learn", str(toml), "--resume"]) == 0
    assert ionmd_main(["learn", str(toml)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert os.path.isfile(learned["work"] / "learn_report.csv")
