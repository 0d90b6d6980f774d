"""Tests of ``ionmd input md`` and of the hand-maintained ``inputs/in.lif``.

The ML pair style is built in parallel, so runs here use a classical Lennard-Jones
model of LiF (unlike pairs bound at the rock-salt distance a/2).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ionmd.driver.lammps_input import MDInputSpec, render_md_input, spec_for_data_file
from ionmd.driver.potential import ModelSpec, model_from_path, pair_lines
from ionmd.driver.runner import latest_restart, restart_step, truncate_dump
from ionmd.driver.structure import make_structure
from ionmd.errors import InputError

REPO = Path(__file__).resolve().parents[1]
LJ = ModelSpec("lj", pair_style="lj/cut 6.0",
               pair_coeff=["1 1 0.05 2.54", "2 2 0.05 2.54", "1 2 0.5 1.79"])
LJ_LINES = "pair_style lj/cut 6.0\npair_coeff 1 1 0.05 2.54\npair_coeff 2 2 0.05 2.54\n" \
           "pair_coeff 1 2 0.5 1.79\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_"))}
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _frames(dump: Path) -> list[tuple[int, int, list[str]]]:
    """Return (timestep, n_atoms, elements) per frame of a text dump."""
    lines = dump.read_text().splitlines()
    frames = []
    i = 0
    while i < len(lines):
        assert lines[i] == "ITEM: TIMESTEP"
        step, n = int(lines[i + 1]), int(lines[i + 3])
        assert lines[i + 8] == "ITEM: ATOMS id type element xu yu zu"
        rows = [r.split() for r in lines[i + 9: i + 9 + n]]
        ids = [int(r[0]) for r in rows]
        assert ids == sorted(ids)
        frames.append((step, n, [r[2] for r in rows]))
        i += 9 + n
    return frames


def _thermo(log: Path) -> list[list[float]]:
    rows, on = [], False
    for line in log.read_text().splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            on = True
            continue
        if on and words and re.fullmatch(r"-?\d+", words[0]):
            rows.append([float(w) for w in words])
        else:
            on = False
    return rows


@pytest.fixture(scope="module")
def lif_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lif") / "lif.data"
    make_structure(path, supercell=2, add=["Li@interstitial"])
    return path


def test_input_has_contract_dump_restarts_and_species_group(lif_data):
    spec = spec_for_data_file(lif_data, [LJ], 900.0, dump_every=50, species=["Li"],
                              restart_every=200, n_equil=100, n_prod=400)
    text = render_md_input(spec)
    assert "dump            traj dumped custom 50 dump.lammpstrj id type element xu yu zu" in text
    assert "dump_modify     traj sort id element Li F" in text
    assert "group           dumped type 1" in text
    assert "restart         200 restart.a.lmp restart.b.lmp" in text
    assert "timestep        0.001" in text
    assert f"read_data      {lif_data}" in text
    assert "fix             integrate all nvt temp ${T} ${T} 0.1" in text
    # Every non-blank line is a command or explained by a comment block.
    assert text.count("\n# ") >= 10


def test_thermostat_and_ensemble_variants(lif_data):
    base = dict(dt_fs=2.0, n_equil=10, n_prod=10)
    csvr = render_md_input(spec_for_data_file(lif_data, [LJ], 700, thermostat="csvr", seed=5, **base))
    assert "fix             integrate all nve" in csvr
    assert "fix             thermostat all temp/csvr ${T} ${T} 0.2 5" in csvr
    npt = render_md_input(spec_for_data_file(lif_data, [LJ], 700, ensemble="npt", P_bar=10, **base))
    assert "fix             integrate all npt temp ${T} ${T} 0.2 iso 10 10 2" in npt
    csvr_npt = render_md_input(spec_for_data_file(lif_data, [LJ], 700, ensemble="npt",
                                                  thermostat="csvr", **base))
    assert "fix             integrate all nph iso 1 1 2" in csvr_npt
    assert "temp/csvr" in csvr_npt


def test_torch_models_and_committee_deviation():
    one = pair_lines([model_from_path("m/lif_mace.pt")], ["Li", "F"])
    assert one == ["pair_style      mlip/torch m/lif_mace.pt device auto",
                   "pair_coeff      * * Li F"]
    two = pair_lines([model_from_path("a.pt"), model_from_path("b.pt")], ["Li", "F"],
                     deviation_every=50)
    assert two[0] == "pair_style      mlip/torch a.pt b.pt deviation 50 model_devi.out device auto"
    with pytest.raises(InputError, match="cannot mix"):
        pair_lines([model_from_path("a.pt"), LJ], ["Li", "F"])
    eam = ModelSpec("eam", pair_style="eam/alloy", pair_coeff=["* * X.eam.alloy {symbols}"])
    assert pair_lines([eam], ["Li", "F"])[1] == "pair_coeff      * * X.eam.alloy Li F"


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"T_K": -5.0}, "temperature must be positive"),
        ({"dt_fs": 0.0}, "timestep must be positive"),
        ({"species": ["Na"]}, "species 'Na' to dump is not an atom type"),
        ({"species": ["Xq"]}, "unknown element 'Xq'"),
        ({"thermostat": "berendsen"}, "unknown thermostat 'berendsen'"),
        ({"ensemble": "nve"}, "unknown ensemble 'nve'"),
        ({"dump_every": 0}, "dump_every must be > 0"),
        ({"n_prod": -1}, "n_prod must be >= 0"),
    ],
)
def test_bad_settings(settings, match):
    kwargs = dict(data_file="x.data", symbols=["Li", "F"], models=[LJ], T_K=900.0)
    kwargs.update(settings)
    with pytest.raises(InputError, match=match):
        render_md_input(MDInputSpec(**kwargs))


def test_run_then_resume_gives_one_continuous_trajectory(tmp_path, lif_data):
    """Run 100 + 400 steps, then extend to 900 from a restart file: no step twice or lost."""
    spec = spec_for_data_file(lif_data, [LJ], 900.0, dump_every=50, species=["Li"],
                              restart_every=150, n_equil=100, n_prod=400, thermostat="csvr",
                              thermo_every=50)
    (tmp_path / "in.lammps").write_text(render_md_input(spec))
    cmd = ["lmp", "-in", "in.lammps", "-log", "log.lammps", "-screen", "none"]
    subprocess.run(cmd, cwd=tmp_path, check=True, env=_env(), timeout=120)
    frames = _frames(tmp_path / "dump.lammpstrj")
    assert [f[0] for f in frames] == list(range(100, 501, 50))
    assert all(n == 33 and set(el) == {"Li"} for _, n, el in frames)
    name, step = latest_restart(tmp_path)
    assert step == 450 and restart_step(tmp_path / "restart.a.lmp") in (150, 450)
    # Pretend the run was killed at step 450+: keep frames before the restart, extend.
    assert truncate_dump(tmp_path / "dump.lammpstrj", step) == len(range(100, 450, 50))
    subprocess.run(cmd + ["-var", "restart", name, "-var", "n_prod", "800"], cwd=tmp_path,
                   check=True, env=_env(), timeout=120)
    log = (tmp_path / "log.lammps").read_text()
    assert f"resuming from {name}" in log
    steps = [f[0] for f in _frames(tmp_path / "dump.lammpstrj")]
    assert steps == list(range(100, 901, 50))
    # The thermostat holds the temperature: production mean within 20 % of 900 K.
    temps = np.array([row[2] for row in _thermo(tmp_path / "log.lammps")])
    assert abs(temps.mean() - 900.0) < 180.0


def test_cli_input_md(tmp_path, lif_data):
    out = tmp_path / "in.md"
    cmd = [sys.executable, "-m", "ionmd.driver", "input", "md", str(lif_data), "-o", str(out),
           "--model", "a.pt", "--model", "b.pt", "--T", "1100", "--species", "Li",
           "--thermostat", "csvr", "--deviation-every", "20"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "mlip/torch a.pt b.pt deviation 20 model_devi.out" in text
    assert "variable        T index 1100" in text
    bad = subprocess.run(cmd[:-4] + ["--species", "Cl"], capture_output=True, text=True,
                         env=_env(), timeout=60)
    assert bad.returncode == 2 and "species 'Cl'" in bad.stderr


def _in_lif_with(pair_text: str) -> str:
    text = (REPO / "inputs" / "in.lif").read_text()
    text = re.sub(r"^pair_style .*\n", "", text, flags=re.M)
    return re.sub(r"^pair_coeff .*\n", pair_text, text, flags=re.M)


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_in_lif_runs_with_a_classical_stand_in(tmp_path, ranks):
    """inputs/in.lif with its pair lines swapped for LJ, from the repo root, 1 and 2 ranks."""
    script = tmp_path / "in.lif"
    script.write_text(_in_lif_with(LJ_LINES))
    out = tmp_path / "out"
    cmd = ["mpirun", "-np", str(ranks), "lmp", "-in", str(script), "-var", "T", "900",
           "-var", "n_equil", "100", "-var", "n_prod", "200", "-var", "outdir", str(out),
           "-log", str(tmp_path / "log.root"), "-screen", "none"]
    subprocess.run(cmd, cwd=REPO, check=True, env=_env(), timeout=120)
    frames = _frames(out / "dump.lammpstrj")
    assert [f[0] for f in frames] == [100, 200, 300]
    assert frames[0][1] == 33
    assert "run complete at step 300" in (out / "log.lammps").read_text()


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_in_lif_runs_as_is_with_the_bundled_model(tmp_path, ranks):
    model = REPO / "inputs" / "models" / "lif_mace.pt"
    assert model.is_file(), "bundled model missing"
    out = tmp_path / "out"
    cmd = ["mpirun", "-np", str(ranks), "lmp", "-in", "inputs/in.lif", "-var", "T", "900",
           "-var", "n_equil", "0", "-var", "n_prod", "100", "-var", "outdir", str(out),
           "-log", str(tmp_path / "log.root"), "-screen", "none"]
    subprocess.run(cmd, cwd=REPO, check=True, env=_env(), timeout=600)
    assert [f[0] for f in _frames(out / "dump.lammpstrj")] == [0, 100]


def test_nan_stops_the_run_with_an_error(tmp_path, lif_data):
    """The NaN guard of the template: a force that turns NaN at step 60 ends the run."""
    from ionmd.driver.runner import outcome

    spec = spec_for_data_file(lif_data, [LJ], 900.0, n_equil=0, n_prod=300, thermo_every=20)
    text = render_md_input(spec).replace(
        "\nrun             ${n_total} upto",
        '\nvariable        fnan equal "ternary(step>=60, 1e308*10-1e308*10, 0.0)"\n'
        "fix             push all addforce v_fnan 0 0\nrun             ${n_total} upto")
    (tmp_path / "in.lammps").write_text(text)
    with open(tmp_path / "stdout.txt", "w") as out:
        rc = subprocess.run(["lmp", "-in", "in.lammps", "-log", "log.lammps"], cwd=tmp_path,
                            stdout=out, stderr=subprocess.STDOUT, env=_env(), timeout=120
                            ).returncode
    ok, error = outcome(tmp_path, rc)
    assert not ok
    assert error.startswith("ERROR: Fix halt condition for fix-id nan_guard met on step")


def test_input_md_refuses_elements_the_model_does_not_know(tmp_path, lif_data):
    """D11: the model's species come from its metadata; an unknown element is named."""
    from ase import Atoms

    from ionmd.driver.potential import check_species, model_species

    mace = REPO / "inputs" / "models" / "lif_mace.pt"
    deepmd = REPO / "inputs" / "models" / "lif_deepmd.pth"
    assert model_species(mace) == ["Li", "F"]
    assert model_species(deepmd) == ["Li", "F"]  # DeePMD: get_type_map() of the module
    assert model_species(REPO / "README.md") is None  # not a model: left to LAMMPS
    source = tmp_path / "oli.xyz"
    Atoms("OLi", positions=[[0, 0, 0], [2.0, 2.0, 2.0]], cell=[4.0, 4.0, 4.0],
          pbc=True).write(source)
    oli = tmp_path / "oli.data"
    make_structure(oli, source=str(source), types=["O", "Li"])
    with pytest.raises(InputError, match=r"element\(s\) O of the atom types .*\(O Li\) unknown "
                                         rf"to model '{deepmd}', which knows only Li F"):
        check_species([model_from_path(deepmd)], ["O", "Li"], "x.data")
    out = tmp_path / "in.md"
    cmd = [sys.executable, "-m", "ionmd.driver", "input", "md", str(oli), "-o", str(out),
           "--model", str(mace), "--T", "900"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2 and not out.exists()
    assert f"element(s) O of the atom types of {oli} (O Li) unknown to model '{mace}', " \
           "which knows only Li F" in proc.stderr
    good = subprocess.run(cmd[:5] + [str(lif_data)] + cmd[6:], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert good.returncode == 0, good.stderr
    assert f"mlip/torch {mace} device auto\npair_coeff      * * Li F\n" in out.read_text()
