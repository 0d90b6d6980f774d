"""Tests of the DeePMD environment helpers (ionmd.models.dpenv) that need no network."""

from __future__ import annotations

import pytest

from ionmd.errors import InputError
from ionmd.models import dpenv


def test_default_env_path_honours_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("IONMD_DEEPMD_ENV", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dpenv.default_env_path() == tmp_path / "ionmd" / "envs" / "deepmd-3.2.0"
    monkeypatch.setenv("IONMD_DEEPMD_ENV", str(tmp_path / "mine"))
    assert dpenv.default_env_path() == tmp_path / "mine"


def test_env_vars_put_env_bin_and_cuda_runtime_first(tmp_path, monkeypatch):
    lib = tmp_path / "lib" / "python3.11" / "site-packages" / "nvidia" / "cuda_runtime" / "lib"
    lib.mkdir(parents=True)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/old")
    monkeypatch.setenv("PYTHONPATH", "/should/not/leak")
    env = dpenv.env_vars(tmp_path)
    assert env["PATH"].split(":")[0] == str(tmp_path / "bin")
    assert env["LD_LIBRARY_PATH"].split(":") == [str(lib), "/old"]
    assert "PYTHONPATH" not in env


def test_resolve_env_refuses_a_directory_without_deepmd(tmp_path):
    assert not dpenv.is_deepmd_env(tmp_path)
    with pytest.raises(
        InputError, match=f"--dp-env {tmp_path}: no python there can `import deepmd.pt`"
    ):
        dpenv.resolve_env(tmp_path)


def test_run_in_env_reports_failures(tmp_path):
    from ionmd.errors import IonmdError

    with pytest.raises(IonmdError, match="failed with exit code 3; see"):
        dpenv.run_in_env(tmp_path, ["sh", "-c", "exit 3"], log=tmp_path / "log.txt")
