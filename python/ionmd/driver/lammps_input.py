"""Write readable, commented LAMMPS inputs for molecular dynamics from a template.

The template is ``inputs/templates/md.lammps.in`` (``string.Template`` syntax,
``$name`` placeholders; ``$$`` is a literal ``$`` for LAMMPS variables). The
generated input:

* reads the data file, or a restart file given as ``-var restart FILE``;
* sets the model(s), the first of which drives the dynamics;
* equilibrates to step ``n_equil`` and produces to step ``n_equil + n_prod``
  with ``run N upto``, so that a resumed run does only the steps left;
* dumps (contract 3) ``id type element xu yu zu``, sorted by id, for the chosen
  species only, during production;
* writes restart files every ``restart_every`` steps to two alternating files.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path

from ionmd.driver.potential import ModelSpec, check_species, pair_lines
from ionmd.driver.structure import check_element, read_type_map
from ionmd.errors import InputError

THERMOSTATS = ("nose-hoover", "csvr")
ENSEMBLES = ("nvt", "npt")
DUMP_FILE = "dump.lammpstrj"
TEMPLATE_NAME = "md.lammps.in"


def template_dir() -> Path:
    """Return the directory of the LAMMPS input templates.

    ``$IONMD_TEMPLATE_DIR`` if set, else ``inputs/templates`` of the source tree.
    """
    override = os.environ.get("IONMD_TEMPLATE_DIR")
    candidates = [Path(override)] if override else []
    here = Path(__file__).resolve()
    candidates += [here.parents[3] / "inputs" / "templates", here.parent / "templates"]
    for candidate in candidates:
        if (candidate / TEMPLATE_NAME).is_file():
            return candidate
    raise InputError(
        f"LAMMPS input template '{TEMPLATE_NAME}' not found in "
        + ", ".join(str(c) for c in candidates)
        + " (set IONMD_TEMPLATE_DIR)"
    )


@dataclass
class MDInputSpec:
    """Everything an MD input needs.

    Attributes
    ----------
    data_file : str
        LAMMPS data file (as written in the input; relative to the run directory).
    symbols : list of str
        Chemical symbol of each atom type, in type order.
    models : list of ModelSpec
        Models; the first drives the dynamics, the others only add a deviation.
    T_K : float
        Temperature, K.
    dt_fs : float
        Timestep, fs.
    n_equil, n_prod : int
        Equilibration and production lengths, steps.
    thermostat : str
        ``nose-hoover`` or ``csvr`` (``fix temp/csvr`` with ``fix nve``/``nph``).
    ensemble : str
        ``nvt`` or ``npt``.
    P_bar : float
        Pressure for NPT, bar.
    tdamp_fs, pdamp_fs : float or None
        Thermostat and barostat damping times, fs (default 100 and 1000 timesteps).
    dump_every : int
        Steps between dump frames.
    species : list of str or None
        Species to dump; None dumps all atoms.
    restart_every : int
        Steps between restart files.
    seed : int
        Random seed of the initial velocities and of CSVR.
    thermo_every : int
        Steps between thermo lines.
    deviation_every : int
        Steps between model-deviation lines (several TorchScript models);
        0 means every ``dump_every`` steps.
    deviation_append : bool
        Append to the model-deviation file instead of starting it afresh (the
        input of a resumed run whose deviation file is to be continued).
    restart_default : str
        Restart file read when the input is run without ``-var restart``;
        ``none`` starts from the data file.
    title : str
        First comment line.
    """

    data_file: str
    symbols: list[str]
    models: list[ModelSpec]
    T_K: float
    dt_fs: float = 1.0
    n_equil: int = 1000
    n_prod: int = 10000
    thermostat: str = "nose-hoover"
    ensemble: str = "nvt"
    P_bar: float = 1.0
    tdamp_fs: float | None = None
    pdamp_fs: float | None = None
    dump_every: int = 100
    species: list[str] | None = None
    restart_every: int = 1000
    seed: int = 1
    thermo_every: int = 100
    deviation_every: int = 0
    deviation_append: bool = False
    restart_default: str = "none"
    title: str = "Molecular dynamics"
    triclinic: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first bad setting."""
        if not self.T_K > 0:
            raise InputError(f"temperature must be positive, got T_K={self.T_K}")
        if not self.dt_fs > 0:
            raise InputError(f"timestep must be positive, got dt_fs={self.dt_fs}")
        for key in ("n_equil", "n_prod"):
            if int(getattr(self, key)) < 0:
                raise InputError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("dump_every", "restart_every", "thermo_every"):
            if int(getattr(self, key)) <= 0:
                raise InputError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.thermostat not in THERMOSTATS:
            raise InputError(f"unknown thermostat '{self.thermostat}': use {' or '.join(THERMOSTATS)}")
        if self.ensemble not in ENSEMBLES:
            raise InputError(f"unknown ensemble '{self.ensemble}': use {' or '.join(ENSEMBLES)}")
        if not 0 < int(self.seed) < 2**31:
            raise InputError(f"seed must be in 1..2^31-1 for LAMMPS, got {self.seed}")
        check_species(self.models, self.symbols, self.data_file)
        for sym in self.species or []:
            check_element(sym, "species")
            if sym not in self.symbols:
                raise InputError(
                    f"species '{sym}' to dump is not an atom type of {self.data_file} "
                    f"(types: {' '.join(self.symbols)})"
                )


def _thermostat_block(spec: MDInputSpec) -> str:
    tdamp_ps = (spec.tdamp_fs if spec.tdamp_fs else 100 * spec.dt_fs) / 1000.0
    pdamp_ps = (spec.pdamp_fs if spec.pdamp_fs else 1000 * spec.dt_fs) / 1000.0
    couple = "tri" if spec.triclinic else "iso"
    baro = f"{couple} {spec.P_bar:g} {spec.P_bar:g} {pdamp_ps:g}"
    if spec.thermostat == "nose-hoover":
        if spec.ensemble == "nvt":
            return (f"# Nose-Hoover chain thermostat, damping {tdamp_ps:g} ps.\n"
                    f"fix             integrate all nvt temp ${{T}} ${{T}} {tdamp_ps:g}")
        return (f"# Nose-Hoover thermostat ({tdamp_ps:g} ps) and barostat ({spec.P_bar:g} bar, "
                f"{pdamp_ps:g} ps).\n"
                f"fix             integrate all npt temp ${{T}} ${{T}} {tdamp_ps:g} {baro}")
    integrator = ("fix             integrate all nve" if spec.ensemble == "nvt"
                  else f"# Nose-Hoover barostat ({spec.P_bar:g} bar, {pdamp_ps:g} ps).\n"
                       f"fix             integrate all nph {baro}")
    return (f"{integrator}\n"
            f"# CSVR (Bussi-Donadio-Parrinello) stochastic velocity rescaling, {tdamp_ps:g} ps.\n"
            f"fix             thermostat all temp/csvr ${{T}} ${{T}} {tdamp_ps:g} {spec.seed}")


def _dump_block(spec: MDInputSpec) -> str:
    lines = []
    group = "all"
    if spec.species and set(spec.species) != set(spec.symbols):
        types = [str(i + 1) for i, s in enumerate(spec.symbols) if s in spec.species]
        lines.append(f"group           dumped type {' '.join(types)}   # {' '.join(spec.species)}")
        group = "dumped"
    lines.append(f"dump            traj {group} custom {spec.dump_every} {DUMP_FILE} "
                 "id type element xu yu zu")
    lines.append(f"dump_modify     traj sort id element {' '.join(spec.symbols)}")
    lines.append('if "${resuming}" then "dump_modify traj append yes"')
    return "\n".join(lines)


def render_md_input(spec: MDInputSpec) -> str:
    """Return the text of the LAMMPS input described by ``spec``."""
    spec.validate()
    template = string.Template((template_dir() / TEMPLATE_NAME).read_text())
    ensemble_text = f"{spec.ensemble.upper()}, {spec.thermostat}"
    values = {
        "title": spec.title,
        "dt_fs": f"{spec.dt_fs:g}",
        "dt_ps": f"{spec.dt_fs / 1000.0:g}",
        "n_equil": str(int(spec.n_equil)),
        "n_prod": str(int(spec.n_prod)),
        "type_map": " ".join(f"{i + 1}={s}" for i, s in enumerate(spec.symbols)),
        "restart_default": spec.restart_default,
        "data_file": spec.data_file,
        "pair_block": "\n".join(pair_lines(spec.models, spec.symbols,
                                           spec.deviation_every or spec.dump_every,
                                           deviation_append=spec.deviation_append)),
        "T_K": f"{spec.T_K:g}",
        "thermo_every": str(int(spec.thermo_every)),
        "seed": str(int(spec.seed)),
        "restart_every": str(int(spec.restart_every)),
        "ensemble_text": ensemble_text,
        "thermostat_block": _thermostat_block(spec),
        "dump_species_text": " ".join(spec.species) if spec.species else "all atoms",
        "dump_every": str(int(spec.dump_every)),
        "dump_block": _dump_block(spec),
    }
    values.update(spec.extra)
    try:
        return template.substitute(values)
    except (KeyError, ValueError) as exc:
        raise InputError(f"template {template_dir() / TEMPLATE_NAME}: bad placeholder {exc}") from exc


def data_file_is_triclinic(path: str | Path) -> bool:
    """Whether a LAMMPS data file has tilt factors."""
    with open(path, errors="replace") as handle:
        for line in handle:
            if line.strip() in ("Masses", "Atoms") or line.startswith("Atoms"):
                return False
            if line.rstrip().endswith("xy xz yz"):
                return True
    return False


def write_md_input(spec: MDInputSpec, path: str | Path) -> Path:
    """Render ``spec`` and write it to ``path``; return the path."""
    text = render_md_input(spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def spec_for_data_file(data_file: str | Path, models: list[ModelSpec], T_K: float,
                       data_file_in_input: str | None = None, **settings) -> MDInputSpec:
    """Return an :class:`MDInputSpec` whose atom types come from ``data_file``'s header."""
    type_map = read_type_map(data_file)
    symbols = [type_map[i] for i in sorted(type_map)]
    return MDInputSpec(
        data_file=data_file_in_input or str(data_file),
        symbols=symbols,
        models=models,
        T_K=T_K,
        triclinic=data_file_is_triclinic(data_file),
        **settings,
    )
