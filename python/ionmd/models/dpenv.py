"""A separate, cached Python environment for DeePMD-kit.

deepmd-kit 3.2.0 is built against torch 2.11.0 exactly and pins an e3nn that
conflicts with mace-torch, so it cannot share ionmd's main environment.
:func:`ensure_deepmd_env` creates (once) a virtual environment holding
``torch==2.11.0``, ``deepmd-kit[torch]==3.2.0``, ``nvidia-cuda-runtime-cu12``
(deepmd's op library links ``libcudart.so.12`` even on CPU-only machines) and
``ase`` (for deepmd's ASE calculator), and returns its path. Commands run inside
it through :func:`run_in_env`, which uses :func:`env_vars` to put the env's
``bin`` on ``PATH`` and its NVIDIA libraries on ``LD_LIBRARY_PATH``.

deepmd-kit itself is never patched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

from ionmd.errors import InputError, IonmdError

DEEPMD_VERSION = "3.2.0"
TORCH_VERSION = "2.11.0"
PACKAGES: tuple[str, ...] = (
    f"torch=={TORCH_VERSION}",
    f"deepmd-kit[torch]=={DEEPMD_VERSION}",
    "nvidia-cuda-runtime-cu12",
    "ase",
)
_CHECK = "import deepmd.pt, torch; print(torch.__version__)"


def default_env_path() -> Path:
    """Return the default location of the cached env (``~/.cache/ionmd/envs/deepmd-3.2.0``).

    ``IONMD_DEEPMD_ENV`` overrides it; ``XDG_CACHE_HOME`` moves the cache root.
    """
    override = os.environ.get("IONMD_DEEPMD_ENV")
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ionmd" / "envs" / f"deepmd-{DEEPMD_VERSION}"


def env_python(path: Path) -> Path:
    """Return the Python interpreter of the env at ``path``."""
    return Path(path) / "bin" / "python"


def _cuda_lib_dirs(path: Path) -> list[Path]:
    """Return the ``nvidia/*/lib`` directories inside the env (for ``libcudart.so.12``)."""
    return sorted(Path(path).glob("lib/python*/site-packages/nvidia/*/lib"))


def env_vars(path: Path) -> dict[str, str]:
    """Return ``os.environ`` extended so that deepmd's op library loads inside the env.

    Adds the env's ``bin`` to ``PATH`` and its NVIDIA runtime libraries to
    ``LD_LIBRARY_PATH``; sets ``DP_INTER_OP_PARALLELISM_THREADS`` and
    ``DP_INTRA_OP_PARALLELISM_THREADS`` from ``OMP_NUM_THREADS`` when unset.
    """
    env = dict(os.environ)
    path = Path(path)
    env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    libs = [str(p) for p in _cuda_lib_dirs(path)]
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    threads = env.get("OMP_NUM_THREADS", "1")
    env.setdefault("DP_INTER_OP_PARALLELISM_THREADS", "1")
    env.setdefault("DP_INTRA_OP_PARALLELISM_THREADS", threads)
    return env


def is_deepmd_env(path: Path) -> bool:
    """Return True when ``path`` holds a Python that can ``import deepmd.pt``."""
    python = env_python(path)
    if not python.exists():
        return False
    proc = subprocess.run(
        [str(python), "-c", _CHECK], env=env_vars(path), capture_output=True, text=True
    )
    return proc.returncode == 0


def ensure_deepmd_env(path: Path | str | None = None, *, quiet: bool = False) -> Path:
    """Create (once) and return a virtual environment that runs DeePMD-kit's ``dp``.

    Parameters
    ----------
    path
        Where the env lives; default :func:`default_env_path`. An existing env
        that already imports ``deepmd.pt`` is reused untouched.
    quiet
        Pass ``-q`` to pip.

    Returns
    -------
    Path
        The env directory; its ``bin/dp`` and ``bin/python`` are usable with
        :func:`env_vars`.

    Raises
    ------
    IonmdError
        If pip fails or the finished env still cannot import ``deepmd.pt``.
    """
    path = Path(path).expanduser() if path is not None else default_env_path()
    if is_deepmd_env(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if not env_python(path).exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(path)
    cmd = [str(env_python(path)), "-m", "pip", "install", *PACKAGES]
    if quiet:
        cmd.insert(4, "-q")
    proc = subprocess.run(cmd, env=env_vars(path))
    if proc.returncode != 0:
        raise IonmdError(
            f"pip install into {path} failed (exit {proc.returncode}): {' '.join(cmd)}"
        )
    if not is_deepmd_env(path):
        raise IonmdError(f"the env {path} was built but its python cannot `import deepmd.pt`")
    return path


def resolve_env(path: Path | str | None) -> Path:
    """Return a usable DeePMD env: the user's ``path`` (checked), else the cached one.

    Raises
    ------
    InputError
        If ``path`` is given but cannot import ``deepmd.pt``.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not is_deepmd_env(p):
            raise InputError(f"--dp-env {p}: no python there can `import deepmd.pt`")
        return p
    return ensure_deepmd_env()


def run_in_env(
    path: Path, args: Sequence[str], *, cwd: Path | str | None = None, log: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``args`` (first item an executable in the env's ``bin``, e.g. ``dp``) inside the env.

    Output goes to ``log`` when given (appended), else it is inherited.

    Raises
    ------
    IonmdError
        If the command exits non-zero (the message names the log file).
    """
    exe = Path(path) / "bin" / args[0]
    cmd = [str(exe if exe.exists() else args[0]), *args[1:]]
    if log is not None:
        with open(log, "a") as fh:
            proc = subprocess.run(
                cmd, cwd=cwd, env=env_vars(path), stdout=fh, stderr=subprocess.STDOUT
            )
    else:
        proc = subprocess.run(cmd, cwd=cwd, env=env_vars(path))
    if proc.returncode != 0:
        where = f"; see {log}" if log else ""
        raise IonmdError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}{where}")
    return proc


def main() -> int:  # pragma: no cover - convenience for `python -m ionmd.models.dpenv`
    """Build the default env and print its path."""
    print(ensure_deepmd_env(sys.argv[1] if len(sys.argv) > 1 else None))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
