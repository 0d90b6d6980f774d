"""The ``neb`` stage of ``ionmd study``: the barrier of each hop class seen in the MD, and reference barriers.

:func:`run_hop_nebs` runs one band per hop class and model (:mod:`ionmd.neb.hops`; an
interstitial study's lattice-interstitial classes as their knock-offs,
:func:`knockoff_jobs`); :func:`load_reference_barriers` reads barriers from elsewhere
to show beside them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.study.analysis_stage import StudyAnalysis
from ionmd.study.cell_stage import CellInfo
from ionmd.study.config import StudyConfig
from ionmd.study.progress import DemoProgress

JOB_RECORD = "job.json"
"""What an NEB directory computes: model, hop label, mechanism, hop class, cell."""


def study_potential(cfg: StudyConfig, label: str, symbols: list[str]):
    """The model ``label`` of the study as NEB potential lines (:class:`ionmd.neb.potential.Potential`)."""
    from ionmd.neb.potential import Potential

    model = next(m for m in cfg.models if m.label == label)
    if model.classical:
        return Potential.from_lines(str(model.pair_style), model.pair_coeff, symbols)
    return Potential.from_model(str(model.path), symbols)


def hop_mechanism(hop: dict[str, Any]) -> str:
    """The mechanism an NEB job computes: ``knockoff`` (a concerted L-I-L move),
    ``direct`` (I-I), ``vacancy`` (L-L), else ``FROM-TO`` of the site kinds."""
    if "knockoff" in hop:
        return "knockoff"
    kinds = (str(hop.get("from_kind", "?")), str(hop.get("to_kind", "?")))
    return {("I", "I"): "direct", ("L", "L"): "vacancy"}.get(kinds, "-".join(kinds))


def classes_in_cell(classes: list[dict[str, Any]], from_cell, to_cell) -> list[dict[str, Any]]:
    """Hop classes with ``start_frac``/``end_frac`` moved from one supercell's fractional
    coordinates to another's (two supercells of the same structure with the same origin:
    the Cartesian positions of the sites are the same), wrapped into [0, 1)."""
    import numpy as np

    to_frac = np.linalg.inv(np.asarray(to_cell, dtype=float))
    out = []
    for c in classes:
        moved = dict(c)
        for key in ("start_frac", "end_frac"):
            if c.get(key) is not None:
                f = np.asarray(c[key], dtype=float) @ np.asarray(from_cell, dtype=float) @ to_frac
                moved[key] = [float(x) for x in np.round(f % 1.0, 10) % 1.0]
        out.append(moved)
    return out


def path_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "hop"


def run_hop_nebs(cfg: StudyConfig, outdir: Path, cell: CellInfo, analysis: StudyAnalysis,
                 n_ranks: int, progress: DemoProgress) -> list[Path]:
    """NEB barrier of each hop class seen in the MD, per model (at most ``neb.max_hop_classes``).

    The end points are the perfect supercell with the defect moved by one hop
    (:func:`ionmd.neb.hops.hop_barrier`), relaxed at fixed cell; the guards of
    :mod:`ionmd.neb.result` flag bands that are not to be quoted. A class whose NEB
    already finished (``neb.json`` present) is read back. Returns the result files.
    """
    if not cfg.neb.enabled or cfg.neb.max_hop_classes == 0:
        return []
    from ionmd.driver.structure import read_structure
    from ionmd.errors import IonmdError
    from ionmd.neb.concerted import concerted_barrier
    from ionmd.neb.hops import hop_barrier
    from ionmd.neb.lammps_input import NEBSettings

    jobs = [(model, c) for model, classes in analysis.hop_classes.items()
            for c in classes[: cfg.neb.max_hop_classes]]
    if not jobs:
        progress.message("NEB: no hop class was seen in the MD, so there is no hop to compute")
        return []
    reference = read_structure(cell.neb_reference)
    if cell.neb_data is not None:  # the classes are in the MD cell's fractional coordinates
        md_cell = read_structure(cell.perfect_data).cell
        jobs = [(model, classes_in_cell([c], md_cell, reference.cell)[0]) for model, c in jobs]
    if cfg.defect.kind == "interstitial":  # L-I classes are halves of knock-offs
        jobs = knockoff_jobs(jobs, reference, cfg.neb.max_hop_classes, progress)
    settings = NEBSettings(ftol_eV_A=cfg.neb.ftol_eV_A, n1_steps=cfg.neb.steps,
                           n2_steps=cfg.neb.climb_steps)
    n_images = cfg.neb.images
    files: list[Path] = []
    for k, (model, hop) in enumerate(jobs):
        target = outdir / path_slug(model) / f"{k:02d}_{path_slug(str(hop['label']))}"
        result = target / "neb.json"
        files.append(result)
        target.mkdir(parents=True, exist_ok=True)
        (target / JOB_RECORD).write_text(json.dumps(
            {"model": model, "label": str(hop.get("label")), "mechanism": hop_mechanism(hop),
             "hop_class": str(hop.get("hop_class", hop.get("label"))),
             "cell": str(cell.neb_reference)}, indent=2) + "\n")
        if result.is_file():
            continue
        progress.update(k / len(jobs), f"{model}: hop class {hop['label']} "
                        f"({k + 1}/{len(jobs)}, {n_images} images)", force=True)
        try:
            run = concerted_barrier if "knockoff" in hop else hop_barrier
            run(reference, hop.get("knockoff", hop), study_potential(cfg, model, cell.types),
                target, species=cfg.defect.species, n_images=n_images, settings=settings,
                ranks_per_image=max(1, cfg.neb.ranks_per_image), hop_type=hop.get("hop_type", -1))
        except IonmdError as exc:  # one failed band must not lose the others
            target.mkdir(parents=True, exist_ok=True)
            (target / "neb_failed.json").write_text(json.dumps(
                {"model": model, "hop": hop.get("label"), "error": str(exc)}, indent=2) + "\n")
            files[-1] = target / "neb_failed.json"
            progress.message(f"NEB {model} {hop['label']} failed: {exc}")
    return files


def knockoff_jobs(jobs: list[tuple[str, dict[str, Any]]], reference, cap: int,
                  progress: DemoProgress) -> list[tuple[str, dict[str, Any]]]:
    """NEB jobs of an interstitial study: each L-I class becomes its knock-off types.

    A single-atom band of an L-I class from the perfect reference is a Frenkel pair that
    relaxes back, so each such class is replaced by its symmetry-distinct knock-offs
    (:func:`ionmd.neb.concerted.knockoff_types_of_class`, most collinear first), labelled
    ``<class>: knock-off ...``; I-I and L-L classes stay single-atom hops. At most ``cap``
    jobs per model: every class (its most collinear knock-off) first, then the other types.
    """
    from dataclasses import replace

    from ionmd.errors import IonmdError
    from ionmd.neb.concerted import knockoff_types_of_class

    first: dict[str, list[dict[str, Any]]] = {}
    more: dict[str, list[dict[str, Any]]] = {}
    for model, c in jobs:
        types = []
        if sorted((str(c.get("from_kind")), str(c.get("to_kind")))) == ["I", "L"]:
            try:
                types = knockoff_types_of_class(reference, c)
            except IonmdError as exc:
                progress.message(f"NEB {model} {c.get('label')}: no knock-off ({exc}); "
                                 "single-atom band")
        kos = [{"label": f"{c.get('label')}: {t.label}", "hop_class": c.get("label"),
                "knockoff": replace(t.representative, label=f"{c.get('label')}: {t.label}"),
                "hop_type": t.index} for t in types] or [c]
        first.setdefault(model, []).append(kos[0])
        more.setdefault(model, []).extend(kos[1:])
    return [(model, j) for model in first for j in (first[model] + more[model])[:cap]]


@dataclass
class ReferenceBarriers:
    """Barriers from elsewhere to show beside the NEB column (``[neb] reference``).

    Attributes
    ----------
    source
        What the numbers are (the file's ``reference`` text) and the file.
    barriers
        Matching key (a hop label, a hop-class label or a mechanism name such as
        ``knockoff``, ``direct``, ``vacancy``) -> the entry (``barrier_eV`` and whatever
        else the file states: ``cell``, ``n_atoms``, ``converged``).
    """

    source: str
    barriers: dict[str, dict[str, Any]]

    def match(self, *names: str) -> dict[str, Any] | None:
        """The first entry whose key equals one of ``names`` (case, spaces, '-', '_' ignored)."""
        by_norm = {_norm(k): v for k, v in self.barriers.items()}
        for name in names:
            if name and _norm(name) in by_norm:
                return by_norm[_norm(name)]
        return None


def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9()]+", "", str(key).lower())


def _barrier_entry(path: Path, key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        raise InputError(f"{path}: barriers_eV.{key}: expected a number (eV) or a table, got {value!r}")
    if isinstance(value, int | float):
        return {"barrier_eV": float(value)}
    if isinstance(value, dict) and ("barrier_eV" in value):
        b = value["barrier_eV"]
        if b is not None and (isinstance(b, bool) or not isinstance(b, int | float)):
            raise InputError(f"{path}: barriers_eV.{key}.barrier_eV: expected a number (eV), got {b!r}")
        return dict(value)
    raise InputError(f"{path}: barriers_eV.{key}: expected a number (eV) or a table with "
                     f"'barrier_eV', got {value!r}")


def load_reference_barriers(path: str | Path, entry: str | None = None) -> ReferenceBarriers:
    """Read a file of reference barriers (JSON).

    Format: ``{"reference": "what they are", "barriers_eV": {KEY: BARRIER}}`` with each
    BARRIER a number (eV) or a table holding ``barrier_eV`` (null: not converged), or,
    for a file with several sets, ``{"barriers_eV": {SET: {KEY: BARRIER}}}`` and
    ``entry`` naming the set. KEY is matched against a hop's label, its hop class and
    its mechanism (:func:`hop_mechanism`).

    Raises
    ------
    InputError
        Unreadable file, no ``barriers_eV`` table, a set file without (or with an
        unknown) ``entry``, or a barrier that is not a number.
    """
    from ionmd.jsonfile import read_json

    path = Path(path)
    raw = read_json(path, "the reference barriers file of [neb] reference")
    table = raw.get("barriers_eV") if isinstance(raw, dict) else None
    if not isinstance(table, dict) or not table:
        raise InputError(f"{path}: expected a table 'barriers_eV' of reference barriers (eV)")
    nested = all(isinstance(v, dict) and "barrier_eV" not in v for v in table.values())
    if nested:
        if entry is None or entry not in table:
            what = "names no set of it" if entry is not None else "is needed: the file has several sets"
            raise InputError(f"{path}: [neb] reference_entry {entry!r} {what}; its sets: "
                             + ", ".join(repr(k) for k in table))
        table = table[entry]
    elif entry is not None:
        raise InputError(f"{path}: [neb] reference_entry {entry!r} given, but the file has one set")
    barriers = {str(k): _barrier_entry(path, str(k), v) for k, v in table.items()}
    source = str(raw.get("reference", "reference barriers")) + f" ({path.name}"
    return ReferenceBarriers(source=source + (f", {entry})" if entry else ")"), barriers=barriers)


def study_references(cfg: StudyConfig) -> ReferenceBarriers | None:
    """The reference barriers of the study (``[neb] reference``), or None."""
    neb = getattr(cfg, "neb", None)
    if neb is None or neb.reference is None:
        return None
    return load_reference_barriers(neb.reference, neb.reference_entry)


def neb_job_record(path: Path, res: dict[str, Any]) -> dict[str, Any]:
    """What an NEB result computes (its ``job.json``; older results: from the hop label)."""
    record = Path(path).parent / JOB_RECORD
    if record.is_file():
        try:
            return json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    hop = res.get("hop")
    label = str(hop.get("label") if isinstance(hop, dict) else hop)
    return {"label": label, "hop_class": label.split(": ", 1)[0],
            "mechanism": "knockoff" if ": knock-off" in label else ""}
