"""The NEB result type, its JSON form and the energy-profile plot."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ionmd.errors import InputError, IonmdError


@dataclass
class EndpointInfo:
    """How an end point changed on relaxation."""

    energy_eV: float
    max_displacement_A: float
    max_force_eV_A: float
    n_steps: int


@dataclass
class NEBResult:
    """Outcome of one NEB calculation (metal units).

    ``barrier_forward_eV``/``barrier_backward_eV`` are ``None`` unless the NEB
    converged: a partial profile is kept for inspection but is not a barrier.

    Attributes
    ----------
    label
        What was computed (built-in case name or file names).
    model
        Model file name or pair style.
    cell
        Supercell description, e.g. ``3x3x3 conventional``, stated beside every barrier.
    n_atoms, n_images
        Atoms per image and images (= partitions) including the end points.
    converged
        Whether the final (climbing) stage met the force tolerance.
    max_force_eV_A
        Largest NEB force on any replica at the end (the achieved force).
    ftol_eV_A
        Force tolerance asked for.
    reaction_coordinate
        Normalised reaction coordinate of each image (0 to 1).
    path_length_A
        Total path length.
    energies_eV
        Image energies relative to the initial image.
    climbing_image
        Index (0-based) of the highest image, the climbing image when climbing was on.
    climbing_image_positions_A
        Its atomic positions.
    case
        Built-in case name (``knockoff``, ``direct``, ``vacancy``), empty for user end points.
    model_sha256
        SHA-256 of the model file (empty for classical potentials): which model the barrier is for.
    a_A, n_cells
        Built-in cases: lattice parameter (Å) and conventional cells per side.
    """

    label: str
    model: str
    cell: str
    n_atoms: int
    n_images: int
    interpolation: str
    climb: bool
    converged: bool
    max_force_eV_A: float
    ftol_eV_A: float
    n_steps: list[int]
    stopping_criteria: list[str]
    reaction_coordinate: list[float]
    path_length_A: float
    energies_eV: list[float]
    barrier_forward_eV: float | None
    barrier_backward_eV: float | None
    climbing_image: int
    climbing_image_positions_A: list[list[float]] = field(default_factory=list)
    climbing_image_symbols: list[str] = field(default_factory=list)
    endpoints: dict[str, EndpointInfo] = field(default_factory=dict)
    workdir: str = ""
    message: str = ""
    case: str = ""
    model_sha256: str = ""
    a_A: float | None = None
    n_cells: int | None = None

    def to_dict(self) -> dict:
        """Plain-JSON dictionary."""
        return asdict(self)

    def write_json(self, path: Path) -> None:
        """Write the result as indented JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read_json(cls, path: Path) -> NEBResult:
        """Read a result written by :meth:`write_json`.

        Raises :class:`InputError` (naming the file) if it is not an NEB result; keys this
        version does not know are ignored.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read NEB result {path}: {exc}") from None
        known = {f.name for f in fields(cls)}
        missing = (
            [
                f.name
                for f in fields(cls)
                if f.name not in d and f.default is MISSING and f.default_factory is MISSING
            ]
            if isinstance(d, dict)
            else ["(not a JSON object)"]
        )
        if missing:
            raise InputError(
                f"{path} is not an ionmd NEB result: it has no key(s) {', '.join(missing)}"
            )
        d = {k: v for k, v in d.items() if k in known}
        d["endpoints"] = {k: EndpointInfo(**v) for k, v in d.get("endpoints", {}).items()}
        return cls(**d)

    def require_converged(self) -> None:
        """Raise :class:`IonmdError` (with the achieved force) unless the NEB converged."""
        if not self.converged:
            raise IonmdError(
                f"NEB ({self.label}, {self.cell}) did not converge within its step budget "
                f"{self.n_steps}: max NEB force {self.max_force_eV_A:.4g} eV/Å > ftol "
                f"{self.ftol_eV_A:g} eV/Å; no barrier is reported (partial profile in {self.workdir})"
            )

    def summary(self) -> str:
        """One line for the terminal."""
        atoms = "" if "atoms" in self.cell else f", {self.n_atoms} atoms"
        if self.converged:
            return (
                f"{self.label} [{self.model}, {self.cell}{atoms}, {self.n_images} images]: "
                f"barrier forward {self.barrier_forward_eV:.4f} eV, backward {self.barrier_backward_eV:.4f} eV "
                f"(max NEB force {self.max_force_eV_A:.3g} eV/Å)"
            )
        top = max(self.energies_eV)
        return (
            f"{self.label} [{self.model}, {self.cell}]: NOT CONVERGED (max NEB force "
            f"{self.max_force_eV_A:.3g} eV/Å > {self.ftol_eV_A:g}); partial profile max "
            f"{top:.4f} eV is not a barrier"
        )


def plot_profile(result: NEBResult, path: Path) -> None:
    """Save the energy profile (eV vs normalised reaction coordinate) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    x, e = result.reaction_coordinate, result.energies_eV
    ax.plot(x, e, "o-", color="C0" if result.converged else "C3")
    i = result.climbing_image
    ax.plot(
        [x[i]],
        [e[i]],
        "*",
        ms=14,
        color="C1",
        label="climbing image" if result.climb else "highest image",
    )
    if result.converged:
        title = f"{result.label}: Ea = {result.barrier_forward_eV:.3f} eV ({result.cell})"
    else:
        title = f"{result.label}: NOT converged (F = {result.max_force_eV_A:.3g} eV/Å)"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"reaction coordinate (fraction of {result.path_length_A:.2f} Å)")
    ax.set_ylabel("energy relative to initial (eV)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
