"""The typed sweep directory (issue 16 item 6): one reader and writer of its state files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_driver_sweep import LJ, _write_toml

from ionmd.analysis.synthetic import HopLattice, hopping_sweep
from ionmd.driver.sweep import prepare_sweep
from ionmd.driver.sweep_config import load_sweep_config
from ionmd.driver.sweepdir import (
    RunRecord,
    read_index,
    read_status,
    save_status,
    status_path,
    write_index,
)
from ionmd.errors import InputError
from ionmd.examples.lif.structure import unit_cell


def test_index_round_trip_of_a_prepared_sweep(tmp_path):
    config = load_sweep_config(_write_toml(tmp_path, f"lj = {LJ}"))
    runs, todo = prepare_sweep(config)
    index = read_index(config.sweep_dir)
    assert index.name == "s" and index.sweep_dir == config.sweep_dir and index.updated_at
    assert [r.id for r in index.runs] == todo == [r.id for r in runs]
    first = index.runs[0]
    assert first == RunRecord.from_dict(runs[0].to_dict())  # the index holds every field
    assert first.type_map_int() == {1: "Li", 2: "F"} and first.species == ["Li"]
    assert index.run_dir(first) == config.sweep_dir / first.dir
    assert read_status(status_path(config.sweep_dir, first), first.id) == first
    first.status, first.attempts = "done", 1
    save_status(config.sweep_dir, first)
    write_index(config.sweep_dir, config.name, [first] + index.runs[1:])
    again = read_index(config.sweep_dir)
    assert [r.id for r in again.with_status("done")] == [first.id]
    assert set(again.by_id()) == set(todo)
    rows = (config.sweep_dir / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("id,model,structure,T_K,seed,dir,status") and len(rows) == 5


def test_index_of_a_synthetic_sweep_without_the_driver_only_keys(tmp_path):
    """Contract 2 keys are enough: a sweep written by another tool is readable."""
    sweep_dir = hopping_sweep(tmp_path / "toy", (600.0, 900.0), (1,), 0.3, 10.0,
                              np.random.default_rng(0), n_frames=20,
                              lattice=HopLattice.of(unit_cell(), "Li", (2, 2, 2)))
    index = read_index(sweep_dir)
    assert [(r.model, r.T_K, r.seed, r.status) for r in index.runs] == \
        [("toy", 600.0, 1, "done"), ("toy", 900.0, 1, "done")]
    assert all((sweep_dir / r.dump).is_file() for r in index.runs)


@pytest.mark.parametrize(("text", "match"), [
    (None, r"is not a sweep directory: it has no sweep.json"),
    ("{oops", r"sweep.json' is not valid JSON: line 1"),
    ('{"name": "x"}', r"sweep.json' has no 'runs' list"),
    ('{"runs": [3]}', r"sweep.json' run #0 is not a JSON object"),
    ('{"runs": [{"id": "m/900K/seed1", "model": "m", "T_K": 900, "dir": "d"}]}',
     r"sweep.json' run 'm/900K/seed1': missing key\(s\) 'seed'"),
])
def test_bad_index_names_the_file_and_the_run(tmp_path, text, match):
    if text is not None:
        (tmp_path / "sweep.json").write_text(text)
    with pytest.raises(InputError, match=match):
        read_index(tmp_path)


def test_bad_status_names_the_file(tmp_path):
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"id": "a", "model": "m", "T_K": 1.0, "seed": 1, "dir": "d",
                                "status": "done"}))
    assert read_status(path).status == "done"
    with pytest.raises(InputError, match=rf"{path}: status file holds run 'a'.*expected run 'b'"):
        read_status(path, "b")
    path.write_text("not json")
    with pytest.raises(InputError, match=rf"{path}: status file of run b is unreadable"):
        read_status(path, "b")
