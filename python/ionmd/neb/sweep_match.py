"""NEB barriers beside a sweep's Arrhenius fits: find NEB results and match them to models.

A sweep model (the ``model`` name of the runs in ``sweep.json``) matches an NEB result
(:class:`~ionmd.neb.result.NEBResult`) when, in this order of trust:

1. the SHA-256 of the model file that drove the sweep's MD (the first path after
   ``pair_style mlip/torch`` in a run's ``in.lammps``) equals the result's ``model_sha256``;
2. that file's name equals the result's ``model`` (the model file name);
3. the sweep model's name equals the result's ``model`` or its stem
   (``lif_mace`` matches ``lif_mace.pt``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ionmd.driver.sweepdir import read_index_json
from ionmd.errors import InputError
from ionmd.filehash import file_sha256
from ionmd.neb.result import NEBResult

NEB_SUBDIR = "neb"
"""NEB result JSONs in ``<sweep_dir>/neb/*.json`` are found automatically."""


@dataclass
class SweepModel:
    """What identifies one sweep model: its name, driving model file names and hashes."""

    name: str
    file_names: set[str] = field(default_factory=set)
    sha256: set[str] = field(default_factory=set)


@dataclass
class MatchedNEB:
    """An NEB result, the file it came from and the sweep model it belongs to (or None)."""

    source: Path
    result: NEBResult
    model: str | None = None
    matched_by: str = ""

    def to_dict(self) -> dict:
        """Summary for ``report.json`` (without the climbing image's coordinates)."""
        r = self.result
        return {
            "source": str(self.source),
            "sweep_model": self.model,
            "matched_by": self.matched_by,
            "neb_model": r.model,
            "model_sha256": r.model_sha256,
            "case": case_name(r),
            "cell": r.cell,
            "n_atoms": r.n_atoms,
            "n_images": r.n_images,
            "converged": r.converged,
            "barrier_forward_eV": r.barrier_forward_eV,
            "barrier_backward_eV": r.barrier_backward_eV,
            "max_force_eV_A": r.max_force_eV_A,
            "flags": list(r.flags),
        }


def case_name(result: NEBResult) -> str:
    """The hop (built-in case, else the result's label)."""
    return result.case or result.label


def find_neb_results(
    sweep_dir: str | Path, extra: list[str | Path] | None = None
) -> tuple[list[tuple[Path, NEBResult]], list[str]]:
    """NEB results in ``<sweep_dir>/neb/*.json`` and in the ``extra`` files.

    An auto-discovered JSON that is not an NEB result is skipped with a note; an
    ``extra`` file that cannot be read raises :class:`InputError` naming it.
    """
    found: list[tuple[Path, NEBResult]] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for p in sorted((Path(sweep_dir) / NEB_SUBDIR).glob("*.json")):
        try:
            found.append((p, NEBResult.read_json(p)))
            seen.add(p.resolve())
        except InputError as exc:
            notes.append(f"NEB: skipped {p}: {exc}")
    for p in map(Path, extra or []):
        if not p.is_file():
            raise InputError(f"NEB result {p} does not exist")
        if p.resolve() not in seen:
            found.append((p, NEBResult.read_json(p)))
            seen.add(p.resolve())
    return found, notes


_MLIP_LINE = re.compile(r"^\s*pair_style\s+mlip/torch\s+(\S+)", re.MULTILINE)


def sweep_models(sweep_dir: str | Path) -> dict[str, SweepModel]:
    """The sweep's models, with the driving model file of each (read from the runs' inputs)."""
    sweep_dir = Path(sweep_dir)
    runs = read_index_json(sweep_dir)["runs"]
    models: dict[str, SweepModel] = {}
    hashed: dict[Path, str] = {}
    for run in runs:
        name = str(run.get("model", ""))
        if not name:
            continue
        m = models.setdefault(name, SweepModel(name))
        run_dir = sweep_dir / str(run.get("dir", ""))
        inp = run_dir / "in.lammps"
        if not run.get("dir") or not inp.is_file():
            continue
        hit = _MLIP_LINE.search(inp.read_text(errors="replace"))
        if not hit:
            continue
        model_path = Path(hit.group(1))
        m.file_names.add(model_path.name)
        for base in (Path(),) if model_path.is_absolute() else (run_dir, sweep_dir, Path()):
            cand = (base / model_path).resolve()
            if cand.is_file():
                if cand not in hashed:
                    hashed[cand] = file_sha256(cand)
                m.sha256.add(hashed[cand])
                break
    return models


def _match_one(r: NEBResult, models: dict[str, SweepModel]) -> tuple[str | None, str]:
    """(sweep model, how it matched) for one result, trying the rules in order of trust."""
    for m in models.values():
        if r.model_sha256 and r.model_sha256 in m.sha256:
            return m.name, "model file SHA-256"
    for m in models.values():
        if r.model in m.file_names:
            return m.name, "model file name"
    for m in models.values():
        if m.name in (r.model, Path(r.model).stem):
            return m.name, "model name"
    return None, ""


def match_results(
    results: list[tuple[Path, NEBResult]], models: dict[str, SweepModel]
) -> list[MatchedNEB]:
    """Attach each NEB result to the sweep model it was computed with (see module docstring)."""
    return [MatchedNEB(source, r, *_match_one(r, models)) for source, r in results]


def barrier_text(r: NEBResult) -> str:
    """Short form for a table cell: ``0.161 eV knockoff (217 atoms, converged)``."""
    flags = f"; flags: {', '.join(r.flags)}" if r.flags else ""
    if r.converged and r.barrier_forward_eV is not None:
        return f"{r.barrier_forward_eV:.3f} eV {case_name(r)} ({r.n_atoms} atoms, converged{flags})"
    why = "REFUSED" if r.refused else "NOT converged"
    return f"no barrier: {case_name(r)} ({r.n_atoms} atoms, {why}{flags})"


def neb_markdown(matched: list[MatchedNEB], arrhenius_Ea_eV: dict[str, float]) -> list[str]:
    """The report's NEB section: one row per NEB result, beside its model's Arrhenius Ea."""
    if not matched:
        return []
    md = [
        "## NEB barriers",
        "",
        "Climbing-image NEB barriers (`ionmd neb`) of the sweep's models, beside the Arrhenius "
        "Ea of the same model. Barriers depend strongly on the cell for interstitial hops: "
        "compare only results from the same cell.",
        "",
        "| model | Arrhenius Ea (eV) | hop (case) | NEB barrier forward (eV) | backward (eV) "
        "| cell | atoms | images | converged | NEB model file | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in sorted(matched, key=lambda x: (x.model is None, x.model or "", case_name(x.result))):
        r = x.result
        ea = arrhenius_Ea_eV.get(x.model) if x.model else None
        fw = (
            f"{r.barrier_forward_eV:.3f}"
            if r.converged and r.barrier_forward_eV is not None
            else "—"
        )
        bw = (
            f"{r.barrier_backward_eV:.3f}"
            if r.converged and r.barrier_backward_eV is not None
            else "—"
        )
        conv = "yes" if r.converged else (
            "refused" if r.refused else f"no (max force {r.max_force_eV_A:.3g} eV/Å)"
        )
        if r.flags:
            conv += f"; flags: {', '.join(r.flags)}"
        sha = f" (sha256 {r.model_sha256[:12]})" if r.model_sha256 else ""
        md.append(
            f"| {x.model or '(no sweep model)'} | {'n/a' if ea is None else f'{ea:.3f}'} | "
            f"{case_name(r)} | {fw} | {bw} | {r.cell} | {r.n_atoms} | {r.n_images} | {conv} | "
            f"{r.model}{sha} | {x.source.name} |"
        )
    md.append("")
    return md
