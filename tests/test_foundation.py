"""The install: CLI, plugin auto-loading by `lmp`, `ionmd doctor`, and the demo placeholder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def test_cli_version_and_help():
    from ionmd import __version__

    proc = _run([sys.executable, "-m", "ionmd", "--version"])
    assert proc.returncode == 0 and __version__ in proc.stdout
    proc = _run(["ionmd", "--help"])
    for command in ("doctor", "demo", "structure", "sweep", "export", "diffusion", "neb"):
        assert command in proc.stdout


def test_lmp_loads_pair_style_without_plugin_load():
    """The launcher's entry point auto-loads the plugin. (`lmp -h` prints its style lists
    before LAMMPS auto-loads plugins, so it cannot show plugin styles; `plugin list` does.)"""
    proc = _run(["lmp", "-log", "none"], input="plugin list\n")
    assert "pair style plugin mlip/torch" in proc.stdout


def test_doctor_healthy():
    from ionmd.doctor import run_checks

    report = run_checks()
    assert report.healthy, [c for c in report.checks if not c.ok]
    assert any(c.name == "plugin" and "mlip/torch" in c.value for c in report.checks)


def test_doctor_reports_missing_plugin():
    env = dict(os.environ, IONMD_PLUGIN="/nonexistent/ionmdplugin.so")
    proc = _run(["ionmd", "doctor"], env=env)
    assert proc.returncode == 1
    assert "ionmdplugin.so missing" in proc.stdout and "PROBLEMS FOUND" in proc.stdout
    assert "pip install --no-build-isolation" in proc.stdout


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert Path(ROOT / "Makefile").read_text().count("torch==2.13.0") == 1
