"""Fast tests of ``ionmd.learn``: config errors name the key, classification, selection, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionmd.errors import InputError
from ionmd.learn.config import load_learn_config
from ionmd.learn.explore import read_deviation, sweep_toml_text
from ionmd.learn.select import class_counts, classify, farthest_point, select_frames
from ionmd.learn.state import LearnState, load_state, save_state
from ionmd.tomlconfig import tomllib

GOOD = """
name = "t"
[data]
initial = "init.extxyz"
[explore]
structure = "lif.data"
temperatures_K = [1000]
[select]
lo_eV_A = 0.05
hi_eV_A = 0.3
"""


@pytest.fixture
def cfg_dir(tmp_path):
    (tmp_path / "init.extxyz").write_text("placeholder\n")
    (tmp_path / "lif.data").write_text("placeholder\n")
    return tmp_path


def _write(cfg_dir, text):
    path = cfg_dir / "learn.toml"
    path.write_text(text)
    return path


def test_good_config_defaults_and_paths(cfg_dir):
    config = load_learn_config(_write(cfg_dir, GOOD))
    assert config.work_dir == (cfg_dir / "t").resolve()
    assert config.model["committee"] == 3 and config.model["family"] == "mace"
    assert config.stop == {"accurate_fraction": 0.95, "max_iterations": 5}
    assert config.labeller["calculator"] == "chgnet"
    assert config.data["initial"] == (cfg_dir / "init.extxyz").resolve()
    assert config.explore["structure"] == (cfg_dir / "lif.data").resolve()


@pytest.mark.parametrize("edit, key", [
    (lambda t: "bogus = 1\n" + t, "bogus"),
    (lambda t: t.replace("temperatures_K", "temperature_K"), "explore.temperature_K"),
    (lambda t: t.replace('initial = "init.extxyz"', 'initial = "missing.extxyz"'), "data.initial"),
    (lambda t: t.replace('initial = "init.extxyz"', ""), "data.initial"),
    (lambda t: t.replace("hi_eV_A = 0.3", "hi_eV_A = 0.01"), "select.hi_eV_A"),
    (lambda t: t.replace("lo_eV_A = 0.05", "lo_eV_A = -1"), "select.lo_eV_A"),
    (lambda t: t.replace("[1000]", "[1000, -5]"), "explore.temperatures_K[1]"),
    (lambda t: t.replace("[1000]", '"hot"'), "explore.temperatures_K"),
    (lambda t: t + "[model]\ncommittee = 1\n", "model.committee"),
    (lambda t: t + "[model]\nfamily = \"nequip\"\n", "model.family"),
    (lambda t: t + "[model]\nepochs = 2.5\n", "model.epochs"),
    (lambda t: t + "[stop]\naccurate_fraction = 1.5\n", "stop.accurate_fraction"),
    (lambda t: t.replace("[select]", "[select]\nbudget = 0"), "select.budget"),
    (lambda t: t.replace("[select]", "[select]\nmethod = \"best\""), "select.method"),
    (lambda t: t.replace('structure = "lif.data"', ""), "explore.structure"),
    (lambda t: t.replace("[explore]", "[explore]\nn_prod = 5\nevery = 10"), "explore.n_prod"),
    (lambda t: t.replace("[select]\nlo_eV_A = 0.05\nhi_eV_A = 0.3\n", ""), "select"),
])
def test_config_errors_name_the_key(cfg_dir, edit, key):
    path = _write(cfg_dir, edit(GOOD))
    with pytest.raises(InputError) as err:
        load_learn_config(path)
    assert f"key '{key}'" in str(err.value)
    assert str(path) in str(err.value)


def test_structure_recipe_source_is_resolved_beside_the_config(cfg_dir):
    (cfg_dir / "cells").mkdir()
    (cfg_dir / "cells" / "x.cif").write_text("placeholder\n")
    text = GOOD.replace('structure = "lif.data"\n', "") + (
        '[explore.structures]\nfile = { source = "cells/x.cif", supercell = 2 }\n'
        'built = { source = "builtin:lif", supercell = 2 }\n')
    config = load_learn_config(_write(cfg_dir, text))
    assert config.explore["structures"]["file"]["source"] == str((cfg_dir / "cells" / "x.cif").resolve())
    assert config.explore["structures"]["built"]["source"] == "builtin:lif"
    bad = _write(cfg_dir, text.replace("cells/x.cif", "cells/none.cif"))
    with pytest.raises(InputError, match=r"key 'explore.structures.file.source': file 'cells/none.cif'"):
        load_learn_config(bad)


def test_config_table_that_is_not_a_table(cfg_dir):
    path = _write(cfg_dir, "model = 3\n" + GOOD)
    with pytest.raises(InputError, match=r"key 'model': expected a table, got int$"):
        load_learn_config(path)


def test_config_missing_and_invalid_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_learn_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_learn_config(bad)


def test_classify_boundaries():
    d = [0.0, 0.049, 0.05, 0.2, 0.299, 0.3, 2.0, float("nan")]
    assert classify(d, 0.05, 0.3) == ["accurate", "accurate", "candidate", "candidate",
                                      "candidate", "failed", "failed", "failed"]
    assert class_counts(classify(d, 0.05, 0.3)) == {"accurate": 2, "candidate": 3, "failed": 3}


def test_spread_selection_covers_runs_time_and_deviation():
    # Two runs of 50 frames each; every frame is a candidate. Run "a" has a long
    # plateau of nearly equal deviations; taking the first N would take run "a" only.
    t = np.arange(50) * 0.01
    devi = np.concatenate([0.1 + 0.001 * np.arange(50), 0.2 + 0.001 * np.arange(50)])
    times = np.concatenate([t, t])
    runs = ["a"] * 50 + ["b"] * 50
    picked = select_frames(devi, times, runs, 0.05, 0.3, budget=6)
    assert len(picked) == 6
    assert {runs[i] for i in picked} == {"a", "b"}
    assert sum(runs[i] == "a" for i in picked) == 3
    first = select_frames(devi, times, runs, 0.05, 0.3, budget=6, method="first")
    assert first == [0, 1, 2, 3, 4, 5]
    # Spread: the picked times of each run span most of the run, first-N does not.
    for name in ("a", "b"):
        ts = sorted(times[i] for i in picked if runs[i] == name)
        assert ts[-1] - ts[0] > 0.3
    # The frame of largest deviation is always picked first.
    assert int(np.argmax(devi)) in picked
    # Only candidates are picked; fewer candidates than the budget gives all of them.
    few = select_frames([0.01, 0.1, 0.5, 0.2], [0, 1, 2, 3], ["a"] * 4, 0.05, 0.3, budget=10)
    assert few == [1, 3]
    rnd = select_frames(devi, times, runs, 0.05, 0.3, budget=6, method="random", seed=1)
    assert len(set(rnd)) == 6 and rnd == select_frames(devi, times, runs, 0.05, 0.3, 6,
                                                        "random", seed=1)


def test_farthest_point_on_a_line():
    x = np.linspace(0.0, 1.0, 11)[:, None]
    assert sorted(farthest_point(x, [0] * 11, 3, start=0)) == [0, 5, 10]


def test_read_deviation_and_sweep_toml(tmp_path):
    devi = tmp_path / "model_devi.out"
    devi.write_text("#  step max_devi_v min_devi_v avg_devi_v max_devi_f min_devi_f avg_devi_f\n"
                    "0 1e-3 1e-4 5e-4 0.12 0.01 0.05\n"
                    "10 1e-3 1e-4 5e-4 0.34 0.02 0.07\n"
                    "20 1e-3 1e-4")  # torn last line
    assert read_deviation(devi) == {0: 0.12, 10: 0.34}
    explore = {"structure": tmp_path / "lif.data", "structures": None, "temperatures_K": [1000],
               "seeds": [1, 2], "dt_fs": 1.0, "n_equil": 100, "n_prod": 500, "every": 25,
               "thermostat": "csvr", "ensemble": "nvt", "P_bar": None, "tdamp_fs": None,
               "pdamp_fs": None, "lmp": None, "timeout_s": 0.0}
    parsed = tomllib.loads(sweep_toml_text(explore, [tmp_path / "m0.pt", tmp_path / "m1.pt"]))
    assert parsed["models"]["committee"] == [str(tmp_path / "m0.pt"), str(tmp_path / "m1.pt")]
    assert parsed["md"]["dump_every"] == parsed["md"]["deviation_every"] == 25
    assert parsed["md"]["restart_every"] > 600  # no mid-run restart (deviation file continuity)
    assert parsed["seeds"] == [1, 2] and parsed["temperatures_K"] == [1000.0]


def test_state_round_trip(tmp_path):
    state = LearnState(name="x", config="c.toml", config_digest="abc")
    it = state.iteration(1)
    it.steps["train"].status = "done"
    it.stats["accurate_fraction"] = 0.5
    save_state(tmp_path, state)
    back = load_state(tmp_path)
    assert [i.dir for i in back.iterations] == ["iter.000", "iter.001"]
    assert back.iterations[1].steps["train"].status == "done"
    assert back.iterations[1].stats == {"accurate_fraction": 0.5}
    assert json.loads((tmp_path / "learn_state.json").read_text())["name"] == "x"
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(InputError, match="no learning state"):
        load_state(tmp_path / "elsewhere")


def test_sigterm_records_the_running_step(tmp_path):
    """SIGTERM during a step: the state says which step stopped and why; the exit is not 0."""
    import signal
    import subprocess
    import sys
    import time

    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for i in range(4):
        atoms = bulk("LiF", "rocksalt", a=4.03, cubic=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0 * i, forces=np.zeros((8, 3)))
        frames.append(atoms)
    write(tmp_path / "init.extxyz", frames)
    (tmp_path / "lif.data").write_text("placeholder\n")
    (tmp_path / "learn.toml").write_text(GOOD)
    script = (
        "import time\n"
        "from ionmd.learn.config import load_learn_config\n"
        "from ionmd.learn.loop import run_learning\n"
        f"config = load_learn_config({str(tmp_path / 'learn.toml')!r})\n"
        "run_learning(config, hook=lambda i, s: time.sleep(120) if s == 'train' else None)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    state_file = tmp_path / "t" / "learn_state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if state_file.is_file():
            seen = json.loads(state_file.read_text())
            if seen["iterations"] and seen["iterations"][0]["steps"]["train"]["status"] == "running":
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    state = load_state(tmp_path / "t")
    steps = state.iterations[0].steps
    assert steps["data"].status == "done"
    assert steps["train"].status == "failed"
    assert "LearnInterrupted" in steps["train"].error
    assert steps["train"].wall_s > 0
    assert state.iterations[0].stats["n_train_frames"] == 4
