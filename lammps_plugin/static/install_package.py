#!/usr/bin/env python3
"""Install pair_style mlip/torch into a LAMMPS source tree as the package ML-IONMD.

For LAMMPS builds without the PLUGIN package. Usage:

    python3 lammps_plugin/static/install_package.py <lammps-dir>

then build LAMMPS the normal CMake way with the package switched on:

    cmake -S <lammps-dir>/cmake -B build -D PKG_ML-IONMD=on \\
          -D CMAKE_PREFIX_PATH=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake --build build -j 4

What it does (running it again refreshes the sources and changes nothing else):

* copies lammps_plugin/src (all but plugin_main.cpp, the plugin entry) and the
  style header pair_mlip_torch_style.h to <lammps-dir>/src/ML-IONMD/;
* copies ML-IONMD.cmake (finds Torch, links it, defines the IONMD_* macros) and
  the torch-version reader it shares with the plugin build (cmake/IonmdTorchVersion.cmake) to
  <lammps-dir>/cmake/Modules/Packages/;
* adds ML-IONMD to the STANDARD_PACKAGES list of <lammps-dir>/cmake/CMakeLists.txt
  (which defines the PKG_ML-IONMD option and compiles src/ML-IONMD/*.cpp) and to
  the first foreach(PKG_WITH_INCL ...) list (which includes ML-IONMD.cmake).

Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

PACKAGE = "ML-IONMD"
HERE = Path(__file__).resolve().parent
SOURCES = HERE.parent / "src"
NOT_INSTALLED = {"plugin_main.cpp"}    # the plugin entry; LAMMPS registers the style itself
STYLE_HEADER = HERE / "pair_mlip_torch_style.h"
CMAKE_MODULE = HERE / f"{PACKAGE}.cmake"
TORCH_VERSION_MODULE = HERE.parent.parent / "cmake" / "IonmdTorchVersion.cmake"  # shared with the plugin build


class InstallError(Exception):
    """A LAMMPS tree that this script cannot install into."""


def lammps_layout(lammps_dir: Path) -> tuple[Path, Path, Path]:
    """Return (src/, cmake/CMakeLists.txt, cmake/Modules/Packages/) of a LAMMPS tree."""
    src = lammps_dir / "src"
    cmakelists = lammps_dir / "cmake" / "CMakeLists.txt"
    packages = lammps_dir / "cmake" / "Modules" / "Packages"
    if not lammps_dir.is_dir():
        raise InstallError(f"{lammps_dir}: no such directory (expected a LAMMPS source tree)")
    for needed in (src, cmakelists, packages):
        if not needed.exists():
            hint = ""
            if (lammps_dir.parent / "cmake" / "CMakeLists.txt").is_file():
                hint = f" (did you mean {lammps_dir.parent}?)"
            raise InstallError(
                f"{lammps_dir} is not a LAMMPS source tree: {needed} is missing{hint}. "
                "Pass the top directory of LAMMPS, the one that holds src/ and cmake/."
            )
    return src, cmakelists, packages


def add_to_list(text: str, opener: str, what: str) -> tuple[str, bool]:
    """Append the word `what` to the first CMake argument list that starts with `opener`.

    Returns the new text and whether it changed; the list must already exist.
    """
    match = re.search(re.escape(opener) + r"\b([^)]*)\)", text)
    if match is None:
        raise InstallError(f"'{opener} ...)' not found")
    if what in match.group(1).split():
        return text, False
    body = match.group(1).rstrip()
    if "\n" in body:    # one entry per line: same indent as the last one
        sep = "\n" + re.match(r"[ \t]*", body.rsplit("\n", 1)[-1]).group(0)
    else:
        sep = " "
    return text[: match.start(1)] + body + sep + what + text[match.end(1) :], True


def registered(cmakelists: Path) -> tuple[str, list[str]]:
    """LAMMPS's cmake/CMakeLists.txt with the package registered, and what was added."""
    text = cmakelists.read_text()
    added = []
    for opener in ("set(STANDARD_PACKAGES", "foreach(PKG_WITH_INCL"):
        try:
            text, changed = add_to_list(text, opener, PACKAGE)
        except InstallError as exc:
            raise InstallError(
                f"{cmakelists}: {exc}; this LAMMPS version's CMake layout is not supported"
            ) from None
        if changed:
            added.append(opener + " ...)")
    return text, added


def install(lammps_dir: Path) -> list[str]:
    """Install ML-IONMD into `lammps_dir`; return a line per action for the user."""
    src, cmakelists, packages = lammps_layout(lammps_dir)
    sources = sorted(
        p for p in SOURCES.iterdir() if p.suffix in (".cpp", ".h") and p.name not in NOT_INSTALLED
    )
    modules = (CMAKE_MODULE, TORCH_VERSION_MODULE)
    if not sources or not STYLE_HEADER.is_file() or not all(m.is_file() for m in modules):
        raise InstallError(f"ionmd sources incomplete: {SOURCES}, {STYLE_HEADER}, "
                           f"{', '.join(map(str, modules))}")
    files = [*sources, STYLE_HEADER]
    conflicts = [p.name for p in files if (src / p.name).exists()]
    if conflicts:
        raise InstallError(
            f"{src} already holds {', '.join(conflicts)} (installed with LAMMPS's make build?); "
            "remove them first: LAMMPS's CMake refuses package files in src/"
        )
    text, added = registered(cmakelists)    # before copying: fail on an unknown layout
    pkg_dir = src / PACKAGE
    if pkg_dir.exists():
        shutil.rmtree(pkg_dir)    # ours: a fresh copy drops files removed from ionmd
    pkg_dir.mkdir()
    for path in files:
        shutil.copy2(path, pkg_dir / path.name)
    for module in modules:
        shutil.copy2(module, packages / module.name)
    if added:
        cmakelists.write_text(text)
    report = [
        f"copied {len(files)} files to {pkg_dir}",
        f"copied {', '.join(m.name for m in modules)} to {packages}",
    ]
    if added:
        report.append(f"registered {PACKAGE} in {cmakelists}: {', '.join(added)}")
    else:
        report.append(f"{PACKAGE} was already registered in {cmakelists}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Install ionmd's pair_style mlip/torch into a LAMMPS source tree "
        f"as the package {PACKAGE}."
    )
    parser.add_argument("lammps_dir", type=Path, help="top directory of LAMMPS (holds src/, cmake/)")
    args = parser.parse_args(argv)
    lammps_dir = args.lammps_dir.resolve()
    try:
        report = install(lammps_dir)
    except InstallError as exc:
        print(f"install_package.py: error: {exc}", file=sys.stderr)
        return 1
    for line in report:
        print(line)
    print(
        "Now build LAMMPS with the package on, for example:\n"
        f"  cmake -S {lammps_dir}/cmake -B build -D PKG_{PACKAGE}=on \\\n"
        "        -D CMAKE_PREFIX_PATH=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')\n"
        "  cmake --build build -j 4"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
