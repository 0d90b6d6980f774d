"""The ``fit`` stage of ``ionmd study``: a model fitted by the study itself.

A study whose model table holds a ``fit`` table (``[model.fit]`` or
``[models.NAME.fit]``) has no model file yet. :func:`fit_study_model` makes one for the
study's own structure, each step by the generic library and each resumable:

1. ``frames.extxyz``: training frames of the perfect supercell and the study's
   defective cell (:func:`ionmd.models.sampling.sample_structure`: rattled and
   strained cells, MD with the labeller, straight-line hops, short contacts);
2. ``labelled.extxyz``: energies, forces and stresses from the labeller
   (:func:`ionmd.models.label.label_frames`; CHGNet by default, any calculator that
   ``ionmd label --calculator`` takes);
3. ``mace/``: the MACE fit (:func:`ionmd.models.fit.fit_mace`, ZBL repulsion on by
   default) with its held-out test errors in ``mace/fit.json``;
4. ``model.pt``: the TorchScript export for ``pair_style mlip/torch``
   (:func:`ionmd.models.export.export_model`, verified against the checkpoint).

``fit.json`` in the stage's directory (:class:`StudyFit`) says what was done, with the
held-out RMSE and any flags. A rerun reuses every finished step; a directory fitted
with other settings is refused.

Config (every key optional)::

    [model.fit]
    labeller = "chgnet"            # or emt, lammps:..., python:module:factory
    size = "small"                 # tiny | small | medium (ionmd.models.fit.MACE_SIZES)
    epochs = 60                    # default: the size's
    seed = 0
    dtype = "float64"              # training and export precision (float32 | float64)
    batch_size = 5
    pair_repulsion = true          # ZBL core
    stage_two = true
    cells = "study"                # study: perfect + the study's defect; all: also a
                                   #   vacancy and an interstitial of every mobile species
    config_type_weights = { short_contact = 0.3 }
    mace = { hidden_irreps = "16x0e", max_ell = 1 }   # architecture overrides
    sampling = { n_rattle = 10, temperatures_K = [300, 600], md_frames_per_T = 4 }
                                   # any field of ionmd.models.sampling.SamplePlan
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.jsonfile import write_json_atomic
from ionmd.settings_record import check_or_record
from ionmd.tomlconfig import check_table, key_error

FIT_RECORD = "fit.json"
SPEC_RECORD = "fit_spec.json"
CELLS_CHOICES = ("study", "all")
DTYPES = ("float32", "float64")
#: A held-out force RMSE above this share of the labels' own force RMS is flagged.
FORCE_RMSE_FLAG_SHARE = 0.3
#: A held-out energy RMSE above this (meV/atom) is flagged.
ENERGY_RMSE_FLAG_meV_atom = 20.0

_SCALARS: dict[str, type] = {"labeller": str, "size": str, "epochs": int, "seed": int,
                             "dtype": str, "batch_size": int, "pair_repulsion": bool,
                             "stage_two": bool, "cells": str}
_TABLES = ("config_type_weights", "mace", "sampling")


def _mace_arch_keys() -> set[str]:
    from ionmd.models.fit import MACE_SIZES

    return {k for size in MACE_SIZES.values() for k in size} - {"max_num_epochs"}


def _sampling_types() -> dict[str, Any]:
    from ionmd.models.sampling import SamplePlan

    return {f.name: f.default for f in fields(SamplePlan)}


@dataclass
class FitSpec:
    """How a study fits its own model (the ``fit`` table of a model; see the module docstring)."""

    labeller: str = "chgnet"
    size: str = "small"
    epochs: int | None = None
    seed: int = 0
    dtype: str = "float64"
    batch_size: int = 5
    pair_repulsion: bool = True
    stage_two: bool = True
    cells: str = "study"
    config_type_weights: dict[str, float] = field(default_factory=dict)
    mace: dict[str, str] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_table(cls, path: Path | str, table: Any, key: str) -> FitSpec:
        """Validate the TOML table ``table`` found at ``key`` of the file ``path``.

        Raises
        ------
        InputError
            An unknown key, a value of the wrong kind or out of range; the message
            names the file and the key (``model.fit.size``, ...).
        """
        from ionmd.models.fit import MACE_SIZES

        def fail(k: str, message: str) -> InputError:
            return key_error(path, f"{key}.{k}", message)

        check_table(path, table, set(_SCALARS) | set(_TABLES), key)
        spec = cls()
        for k, v in table.items():
            if k in _SCALARS:
                want = _SCALARS[k]
                if not isinstance(v, want) or (want is int and isinstance(v, bool)):
                    raise fail(k, f"expected {want.__name__}, got {v!r}")
                setattr(spec, k, v)
            elif not isinstance(v, dict):
                raise fail(k, f"expected a table, got {v!r}")
        if spec.size not in MACE_SIZES:
            raise fail("size", f"expected one of {', '.join(MACE_SIZES)}, got {spec.size!r}")
        if spec.dtype not in DTYPES:
            raise fail("dtype", f"expected one of {', '.join(DTYPES)}, got {spec.dtype!r}")
        if spec.cells not in CELLS_CHOICES:
            raise fail("cells", f"expected one of {', '.join(CELLS_CHOICES)}, got {spec.cells!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(spec, name)
            if value is not None and value < 1:
                raise fail(name, f"must be >= 1, got {value}")
        if spec.seed < 0:
            raise fail("seed", f"must be >= 0, got {spec.seed}")
        if not spec.labeller.strip():
            raise fail("labeller", "expected a calculator specification such as 'chgnet'")
        for ctype, w in table.get("config_type_weights", {}).items():
            if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
                raise fail(f"config_type_weights.{ctype}", f"expected a weight >= 0, got {w!r}")
            spec.config_type_weights[str(ctype)] = float(w)
        arch = _mace_arch_keys()
        for name, v in table.get("mace", {}).items():
            if name not in arch:
                raise fail(f"mace.{name}", f"unknown MACE setting (allowed: {', '.join(sorted(arch))})")
            if isinstance(v, bool) or not isinstance(v, str | int | float | list):
                raise fail(f"mace.{name}", f"expected a string or a number, got {v!r}")
            spec.mace[name] = str(v)
        defaults = _sampling_types()
        for name, v in table.get("sampling", {}).items():
            if name not in defaults:
                raise fail(f"sampling.{name}",
                           f"unknown sampling setting (allowed: {', '.join(sorted(defaults))})")
            d = defaults[name]
            if isinstance(d, tuple):
                ok = isinstance(v, list) and all(isinstance(x, int | float) and not isinstance(x, bool)
                                                 for x in v)
                if ok and name != "temperatures_K":
                    ok = len(v) == len(d)
                if not ok:
                    count = "" if name == "temperatures_K" else f"{len(d)} "
                    raise fail(f"sampling.{name}", f"expected a list of {count}numbers, got {v!r}")
                spec.sampling[name] = [float(x) for x in v]
            elif isinstance(d, int):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise fail(f"sampling.{name}", f"expected an integer, got {v!r}")
                spec.sampling[name] = v
            else:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise fail(f"sampling.{name}", f"expected a number, got {v!r}")
                spec.sampling[name] = float(v)
        try:
            spec.plan().check()
        except InputError as exc:
            raise fail("sampling", str(exc)) from None
        return spec

    def plan(self):
        """The :class:`ionmd.models.sampling.SamplePlan` of ``sampling``."""
        from ionmd.models.sampling import SamplePlan

        return SamplePlan(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in self.sampling.items()})

    def mace_args(self) -> list[str]:
        """``mace_run_train`` options overriding the size's architecture (the last one wins)."""
        return [a for k, v in sorted(self.mace.items()) for a in (f"--{k}", v)]


@dataclass
class FitStructure:
    """The cells a study's fit samples: the structure source, its supercell and defects.

    ``vacancies`` and ``interstitials`` are defect specifications of
    :mod:`ionmd.driver.defects` (``Li@2c``, ``Li@void``, an index), one defective cell each.
    """

    source: str
    supercell: str | int = 1
    min_length_A: float | None = None
    mobile: list[str] = field(default_factory=list)
    vacancies: list[str] = field(default_factory=list)
    interstitials: list[str] = field(default_factory=list)


@dataclass
class StudyFit:
    """What :func:`fit_study_model` made (``fit.json`` of the stage)."""

    model: str
    checkpoint: str
    labeller: str
    n_frames: int
    frame_counts: dict[str, int]
    cells: list[str]
    n_train: int
    n_valid: int
    n_test: int
    test_energy_rmse_meV_atom: float
    test_force_rmse_meV_A: float
    test_force_rms_meV_A: float
    export_max_force_error_eV_A: float
    wall_s: float
    flags: list[dict[str, str]] = field(default_factory=list)


def _say(progress, fraction: float, text: str) -> None:
    if progress is not None:
        progress.update(fraction, text, force=True)


def _test_force_rms_meV_A(fit_dir: Path) -> float:
    import numpy as np
    from ase.io import read

    frames = read(fit_dir / "test.xyz", index=":")
    forces = np.concatenate([a.arrays["REF_forces"] for a in frames])
    return float(1000.0 * np.sqrt(np.mean(forces**2)))


def fit_study_model(spec: FitSpec, structure: FitStructure, outdir: str | Path,
                    progress=None) -> Path:
    """Sample, label, fit and export a MACE model for ``structure``; return the model file.

    Parameters
    ----------
    spec
        The fit settings.
    structure
        The structure and the defects to sample.
    outdir
        The stage's directory (``frames.extxyz``, ``labelled.extxyz``, ``mace/``,
        ``model.pt``, ``fit.json``).
    progress
        A :class:`ionmd.study.progress.DemoProgress` (or None).

    Returns
    -------
    Path
        The exported TorchScript model (``outdir/model.pt``).

    Raises
    ------
    InputError
        Bad settings, a labeller that cannot handle the structure's elements, or an
        ``outdir`` fitted with other settings.
    IonmdError
        The training or the export failed (the message names the log).
    """
    from ionmd.models.export import export_model
    from ionmd.models.fit import FitResult, MemberResult, fit_mace
    from ionmd.models.label import label_frames
    from ionmd.models.sampling import sample_structure

    outdir = Path(outdir).resolve()
    record = outdir / FIT_RECORD
    model = outdir / "model.pt"
    check_or_record(outdir / SPEC_RECORD, {"spec": asdict(spec), "structure": asdict(structure)},
                    what="this fit", hint=f"remove {outdir} or choose another output")
    if record.is_file() and model.is_file():
        _say(progress, 1.0, f"reusing the fitted model {model}")
        return model
    t0 = time.time()
    frames, sample_json = outdir / "frames.extxyz", outdir / "frames.json"
    if not sample_json.is_file():
        _say(progress, 0.0, f"sampling training frames (MD with {spec.labeller})")
        vac, inter = list(structure.vacancies), list(structure.interstitials)
        if spec.cells == "all":
            from ionmd.models.sampling import default_defects

            more_v, more_i = default_defects(structure.mobile)
            vac += [v for v in more_v if v not in vac]
            inter += [i for i in more_i if i not in inter]
        tmp = outdir / "frames.tmp.extxyz"
        result = sample_structure(tmp, structure.source, supercell=structure.supercell,
                                  min_length_A=structure.min_length_A,
                                  mobile=structure.mobile or None, vacancies=vac,
                                  interstitials=inter, calculator=spec.labeller,
                                  plan=spec.plan(), seed=spec.seed)
        tmp.replace(frames)
        result.output = str(frames)
        write_json_atomic(sample_json, asdict(result))
    sampled = json.loads(sample_json.read_text())
    labelled = outdir / "labelled.extxyz"
    label_json = outdir / "labelled.json"
    if not label_json.is_file():
        _say(progress, 0.3, f"labelling {sampled['n_frames']} frames with {spec.labeller}")
        lab = label_frames(frames, labelled, spec.labeller)
        write_json_atomic(label_json, asdict(lab))
    fit_dir = outdir / "mace"
    if (fit_dir / "fit.json").is_file():
        raw = json.loads((fit_dir / "fit.json").read_text())
        raw["members"] = [MemberResult(**m) for m in raw.get("members", [])]
        fit = FitResult(**raw)
    else:
        _say(progress, 0.5, f"fitting MACE ({spec.size}"
             + (f", {spec.epochs} epochs" if spec.epochs else "") + ")")
        fit = fit_mace(labelled, fit_dir, size=spec.size, seed=spec.seed, epochs=spec.epochs,
                       dtype=spec.dtype, batch_size=spec.batch_size,
                       pair_repulsion=spec.pair_repulsion,
                       config_type_weights=spec.config_type_weights or None,
                       stage_two=spec.stage_two, extra_args=spec.mace_args())
    checkpoint = Path(fit.members[0].model)
    _say(progress, 0.9, f"exporting {checkpoint.name} to TorchScript")
    tmp_model = outdir / "model.tmp.pt"
    exported = export_model(checkpoint, tmp_model, dtype=spec.dtype)
    tmp_model.replace(model)
    force_rms = _test_force_rms_meV_A(fit_dir)
    flags: list[dict[str, str]] = []
    if fit.n_test < 5:
        flags.append({"flag": "few_test_frames",
                      "detail": f"the held-out RMSE rests on {fit.n_test} frame(s)"})
    if fit.test_energy_rmse_meV_atom > ENERGY_RMSE_FLAG_meV_atom:
        flags.append({"flag": "poor_fit_energy",
                      "detail": f"held-out energy RMSE {fit.test_energy_rmse_meV_atom:.1f} meV/atom "
                                f"is above {ENERGY_RMSE_FLAG_meV_atom:g} meV/atom"})
    if fit.test_force_rmse_meV_A > FORCE_RMSE_FLAG_SHARE * force_rms:
        flags.append({"flag": "poor_fit_forces",
                      "detail": f"held-out force RMSE {fit.test_force_rmse_meV_A:.0f} meV/Å is more "
                                f"than {FORCE_RMSE_FLAG_SHARE:.0%} of the labels' force RMS "
                                f"{force_rms:.0f} meV/Å"})
    summary = StudyFit(model=str(model), checkpoint=str(checkpoint), labeller=spec.labeller,
                       n_frames=int(sampled["n_frames"]), frame_counts=dict(sampled["counts"]),
                       cells=list(sampled["cells"]), n_train=fit.n_train, n_valid=fit.n_valid,
                       n_test=fit.n_test, test_energy_rmse_meV_atom=fit.test_energy_rmse_meV_atom,
                       test_force_rmse_meV_A=fit.test_force_rmse_meV_A,
                       test_force_rms_meV_A=force_rms,
                       export_max_force_error_eV_A=exported.max_force_error_eV_A,
                       wall_s=time.time() - t0, flags=flags)
    write_json_atomic(record, asdict(summary))
    return model


def read_study_fit(outdir: str | Path) -> StudyFit | None:
    """The :class:`StudyFit` of a finished fit stage in ``outdir`` (None when there is none)."""
    path = Path(outdir) / FIT_RECORD
    if not path.is_file():
        return None
    return StudyFit(**json.loads(path.read_text()))
