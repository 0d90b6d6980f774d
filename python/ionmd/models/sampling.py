"""Training frames for any structure, with no material-specific potential (``ionmd sample``).

From a perfect supercell and defective copies of it (vacancies and interstitials of
the mobile species, :mod:`ionmd.driver.defects`), :func:`sample_frames` makes four
kinds of frames, each tagged with ``info["config_type"]`` (for per-type loss weights
in training) and ``info["cell_kind"]`` (which cell it came from):

``rattle``
    Copies of each cell under a random symmetric strain and a Gaussian rattle
    (:func:`strain_and_rattle`).
``md``
    Snapshots of short Langevin MD of each cell with the labeller itself through
    ASE (CHGNet by default, when installed; any ASE calculator), at each temperature
    (:func:`md_frames`).
``hop``
    Frames along straight-line hops of a mobile atom into a nearby vacant site (a
    vacancy) or free void (an interstitial), at interior points of the line
    (:func:`hop_frames`).
``short_contact``
    Frames with one pair of atoms pushed closer than any pair of the structure, the
    distance range of each species pair derived from the structure's own
    nearest-neighbour distance of that pair (:func:`contact_ranges_A`,
    :func:`short_contact_frames`), so that a fitted model learns its repulsive wall.

The frames are written unlabelled (positions, cell, tags) or, with ``label``,
labelled by the same calculator through :func:`ionmd.models.label.label_frames`
(energies, forces, stresses, and the isolated-atom energies ``OUT.e0.json``), which
``ionmd fit`` and ``ionmd learn`` read.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ionmd.errors import InputError


def strain_and_rattle(
    atoms: Atoms, rng: np.random.Generator, strain_sigma: float, rattle_A: tuple[float, float]
) -> Atoms:
    """Return a copy of ``atoms`` under a random symmetric strain and a Gaussian rattle.

    Parameters
    ----------
    atoms : Atoms
        Periodic structure; unchanged.
    rng : numpy.random.Generator
        Source of the random strain and displacements.
    strain_sigma : float
        Standard deviation of the strain components.
    rattle_A : tuple of float
        The rattle's standard deviation (Å) is drawn uniformly from this range.

    Returns
    -------
    Atoms
        The perturbed copy; ``info["strain"]`` holds the six upper-triangle strain components.
    """
    eps = rng.normal(0.0, strain_sigma, (3, 3))
    eps = 0.5 * (eps + eps.T)
    out = atoms.copy()
    out.calc = None
    out.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
    out.positions += rng.normal(0.0, rng.uniform(*rattle_A), out.positions.shape)
    out.wrap()
    out.info["strain"] = " ".join(f"{v:.5f}" for v in eps[np.triu_indices(3)])
    return out


def nearest_pair_distances_A(atoms: Atoms) -> dict[tuple[str, str], float]:
    """Return the shortest periodic distance of each species pair present in ``atoms`` (Å).

    Keys are ``(A, B)`` in the order of first appearance of the species. Pairs of an
    atom with its own periodic images do not count, so ``(A, A)`` is absent when the
    structure has one atom of A.
    """
    from ase.neighborlist import neighbor_list

    widths = np.abs(np.linalg.det(np.array(atoms.cell))) / np.linalg.norm(
        np.cross(np.array(atoms.cell)[[1, 2, 0]], np.array(atoms.cell)[[2, 0, 1]]), axis=1)
    cutoff = float(min(12.0, 1.01 * np.max(widths)))
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    other = i != j  # an atom's own periodic images cannot be pushed together
    i, j, d = i[other], j[other], d[other]
    symbols = np.array(atoms.get_chemical_symbols())
    order = list(dict.fromkeys(symbols.tolist()))
    out: dict[tuple[str, str], float] = {}
    for ia, a in enumerate(order):
        for b in order[ia:]:
            mask = (symbols[i] == a) & (symbols[j] == b)
            if np.any(mask):
                out[(a, b)] = float(d[mask].min())
    return out


def contact_ranges_A(
    atoms: Atoms, fractions: tuple[float, float] = (0.6, 0.85)
) -> dict[tuple[str, str], tuple[float, float]]:
    """Short-contact distance range of each species pair, from the structure's own contacts.

    Parameters
    ----------
    atoms : Atoms
        The perfect structure.
    fractions : tuple of float
        ``(lo, hi)``: the range is ``(lo * d_nn, hi * d_nn)``, where ``d_nn`` is the
        shortest distance of that pair in ``atoms``; ``0 < lo <= hi < 1``.
    """
    lo, hi = fractions
    if not 0.0 < lo <= hi < 1.0:
        raise InputError(f"short-contact fractions must satisfy 0 < lo <= hi < 1, got {fractions}")
    return {pair: (lo * d, hi * d) for pair, d in nearest_pair_distances_A(atoms).items()}


def _crowds_a_third_atom(atoms: Atoms, i: int, j: int,
                         pairs: dict[tuple[str, str], tuple[float, float]]) -> bool:
    """Whether atom ``i`` or ``j`` ended up closer to a third atom than that pair's range allows."""
    symbols = atoms.get_chemical_symbols()
    others = [k for k in range(len(atoms)) if k not in (i, j)]
    if not others:
        return False
    for a in (i, j):
        d = atoms.get_distances(a, others, mic=True)
        for k, dist in zip(others, d, strict=True):
            lo = (pairs.get((symbols[a], symbols[k])) or pairs.get((symbols[k], symbols[a])) or
                  (0.0, 0.0))[0]
            if dist < lo:
                return True
    return False


def short_contact_frames(
    frames: Sequence[Atoms],
    n_frames: int,
    pairs_A: dict[tuple[str, str], tuple[float, float]] | None = None,
    seed: int = 0,
    exclusive: bool = True,
) -> list[Atoms]:
    """Frames with one pair of atoms pushed together, to teach a model its repulsive wall.

    MD at the sampled temperatures seldom brings two atoms much closer than their
    usual contact, so a potential fitted to such frames can be wrong (even
    attractive) at shorter distances and collapse in long MD. Each new frame is a
    copy of a random frame of ``frames`` in which a random atom of species A and
    its nearest atom of species B are moved symmetrically along their bond to a
    distance drawn uniformly from ``pairs_A[(A, B)]``; the pair types take turns. A
    push that brings either atom closer to a third atom than the lower end of that
    pair's range is drawn again, so that each frame has one short contact only.

    Parameters
    ----------
    frames
        Source configurations (periodic cells); unchanged.
    n_frames
        Number of frames to make.
    pairs_A
        Species pair -> (shortest, longest) target distance in Å; default
        :func:`contact_ranges_A` of the first frame.
    seed
        Seed of the random choices.
    exclusive
        Redraw a push that crowds a third atom (see above); False keeps every push
        (the recipe of the bundled LiF data).

    Returns
    -------
    list of Atoms
        Unlabelled frames; ``info`` carries ``short_contact`` ("A-B d"),
        ``short_contact_atoms`` ("i j"), ``config_type = "short_contact"`` and the
        source frame's ``info``.

    Raises
    ------
    InputError
        If no source frame holds a requested pair, or a range is not 0 < lo <= hi.
    """
    if not frames:
        raise InputError("short_contact_frames: no source frames")
    pairs = dict(pairs_A or contact_ranges_A(frames[0]))
    for (a, b), (lo, hi) in pairs.items():
        if not 0.0 < lo <= hi:
            raise InputError(f"short-contact range for {a}-{b} must satisfy 0 < lo <= hi, "
                             f"got {lo, hi}")
    rng = np.random.default_rng(seed)
    keys = list(pairs)
    out: list[Atoms] = []
    attempts = 0
    while len(out) < n_frames:
        attempts += 1
        if attempts > 20 * n_frames + 100:
            names = ", ".join(f"{a}-{b}" for a, b in keys)
            raise InputError(f"short_contact_frames: no source frame holds a pair of {names}")
        a_sym, b_sym = keys[len(out) % len(keys)]
        src = frames[int(rng.integers(len(frames)))]
        syms = np.array(src.get_chemical_symbols())
        cand_a = np.flatnonzero(syms == a_sym)
        if cand_a.size == 0:
            continue
        i = int(rng.choice(cand_a))
        cand_b = np.flatnonzero((syms == b_sym) & (np.arange(len(src)) != i))
        if cand_b.size == 0:
            continue
        d = src.get_distances(i, cand_b, mic=True)
        j = int(cand_b[np.argmin(d)])
        vec = src.get_distance(i, j, mic=True, vector=True)
        r = float(np.linalg.norm(vec))
        target = float(rng.uniform(*pairs[(a_sym, b_sym)]))
        shift = 0.5 * (r - target) * vec / r
        new = src.copy()
        new.calc = None
        new.positions[i] += shift
        new.positions[j] -= shift
        if exclusive and _crowds_a_third_atom(new, i, j, pairs):
            continue
        new.wrap()
        new.info["short_contact"] = f"{a_sym}-{b_sym} {target:.3f}"
        new.info["short_contact_atoms"] = f"{i} {j}"
        new.info["config_type"] = "short_contact"
        out.append(new)
    return out


def md_frames(
    atoms: Atoms,
    calc,
    T_K: float,
    n_frames: int,
    stride: int = 10,
    equil: int = 20,
    dt_fs: float = 1.0,
    friction_per_fs: float = 0.01,
    seed: int = 0,
) -> list[Atoms]:
    """Snapshots of Langevin MD of ``atoms`` at ``T_K`` with the ASE calculator ``calc``.

    Parameters
    ----------
    atoms : Atoms
        Start structure; unchanged.
    calc : ase.calculators.calculator.Calculator
        The labeller (or any ASE calculator).
    T_K : float
        Temperature, K.
    n_frames, stride, equil : int
        ``n_frames`` snapshots every ``stride`` steps after ``equil`` steps.
    dt_fs, friction_per_fs : float
        Time step (fs) and Langevin friction (1/fs).
    seed : int
        Seed of the initial velocities and the Langevin noise.

    Returns
    -------
    list of Atoms
        Unlabelled snapshots with ``info["T_K"]`` and ``info["md_step"]``.

    Raises
    ------
    InputError
        If the MD produces non-finite positions (the calculator blew up).
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    if T_K <= 0 or not np.isfinite(T_K):
        raise InputError(f"MD temperature must be positive, got {T_K} K")
    work = atoms.copy()
    work.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(work, temperature_K=T_K, rng=rng)
    Stationary(work)
    dyn = Langevin(work, timestep=dt_fs * units.fs, temperature_K=T_K,
                   friction=friction_per_fs / units.fs, rng=rng, fixcm=False)
    frames = []
    dyn.run(equil)
    for k in range(n_frames):
        dyn.run(stride)
        if not np.all(np.isfinite(work.positions)):
            raise InputError(f"MD at {T_K:g} K produced non-finite positions at step "
                             f"{equil + (k + 1) * stride}: the calculator is unstable")
        snap = Atoms(work.get_chemical_symbols(), positions=work.positions.copy(),
                     cell=work.cell.copy(), pbc=True)
        snap.wrap()
        snap.info["T_K"] = float(T_K)
        snap.info["md_step"] = equil + (k + 1) * stride
        frames.append(snap)
    return frames


def hop_targets(
    atoms: Atoms,
    record,
    voids_frac: np.ndarray,
    cutoff_factor: float = 1.5,
    max_hops: int = 6,
) -> list[tuple[int, np.ndarray]]:
    """Return the nearby hops ``(moving atom index, end position in Å)`` of one defect.

    A vacancy: atoms of the vacancy's species within ``cutoff_factor`` times the
    distance to the nearest one hop into the vacant site. An interstitial: the
    interstitial atom hops into the free voids within ``cutoff_factor`` times the
    distance to the nearest free void. Closest hops first, at most ``max_hops``.

    Parameters
    ----------
    atoms : Atoms
        The defective cell (the record's positions are in its frame).
    record : ionmd.driver.defects.DefectRecord
        The defect.
    voids_frac : ndarray (n, 3)
        Fractional positions of the voids of the perfect cell.
    """
    from ase.geometry import get_distances

    site = np.asarray(record.cart_A, dtype=float)
    symbols = np.array(atoms.get_chemical_symbols())
    if record.kind == "vacancy":
        movers = np.flatnonzero(symbols == record.species)
        if movers.size == 0:
            return []
        _, d = get_distances(site[None], atoms.positions[movers], cell=atoms.cell, pbc=True)
        d = d[0]
        keep = np.argsort(d)[: max_hops]
        keep = [k for k in keep if d[k] <= cutoff_factor * d.min() + 1e-9]
        return [(int(movers[k]), site.copy()) for k in keep]
    mover = int(record.index)
    if len(voids_frac) == 0:
        return []
    voids = np.asarray(voids_frac) @ np.array(atoms.cell)
    others = np.delete(np.arange(len(atoms)), mover)
    _, occ = get_distances(voids, atoms.positions[others], cell=atoms.cell, pbc=True)
    _, dm = get_distances(atoms.positions[mover][None], voids, cell=atoms.cell, pbc=True)
    radius = occ.min(axis=1)
    dm = dm[0]
    free = (radius > 0.5 * radius.max()) & (dm > 0.3)
    if not np.any(free):
        return []
    idx = np.flatnonzero(free)
    idx = idx[np.argsort(dm[idx])]
    idx = [k for k in idx if dm[k] <= cutoff_factor * dm[idx[0]] + 1e-9][:max_hops]
    return [(mover, voids[k]) for k in idx]


def hop_frames(
    atoms: Atoms, hops: Sequence[tuple[int, np.ndarray]], n_images: int = 5
) -> list[Atoms]:
    """Frames along straight-line hops: atom ``i`` at ``n_images`` interior points of its line.

    The line runs from the atom's position to the minimum-image copy of the end
    position; image ``k`` (1..n_images) is at fraction ``t = k / (n_images + 1)``. Every
    other atom stays put. ``info`` carries ``hop_atom``, ``hop_t``, ``hop_start_A`` and
    ``hop_end_A`` (Cartesian arrays, Å; the end is the unwrapped end of the line).
    """
    from ase.geometry import find_mic

    out = []
    for index, end in hops:
        start = atoms.positions[index].copy()
        vec, _ = find_mic(np.asarray(end) - start, atoms.cell, pbc=True)
        stop = start + vec
        for k in range(1, n_images + 1):
            t = k / (n_images + 1)
            new = atoms.copy()
            new.calc = None
            new.positions[index] = start + t * vec
            new.info["hop_atom"] = int(index)
            new.info["hop_t"] = float(t)
            new.info["hop_start_A"] = start.copy()
            new.info["hop_end_A"] = stop.copy()
            out.append(new)
    return out


@dataclass
class SamplePlan:
    """How many frames of each kind :func:`sample_frames` makes.

    Attributes
    ----------
    n_rattle : int
        Strained and rattled copies per cell.
    strain_sigma : float
        Standard deviation of the strain components.
    rattle_A : tuple of float
        Range of the rattle's standard deviation, Å.
    temperatures_K : tuple of float
        MD temperatures.
    md_frames_per_T : int
        MD snapshots per cell and temperature (0: no MD).
    md_stride, md_equil : int
        Steps between snapshots, and before the first.
    dt_fs : float
        MD time step, fs.
    hop_images : int
        Frames per hop (interior points of the line).
    max_hops : int
        Hops per defect.
    hop_cutoff_factor : float
        Hops up to this times the shortest hop of a defect.
    n_short : int
        Short-contact frames in all.
    contact_fractions : tuple of float
        Short-contact range as fractions of each pair's nearest-neighbour distance.
    """

    n_rattle: int = 10
    strain_sigma: float = 0.01
    rattle_A: tuple[float, float] = (0.01, 0.08)
    temperatures_K: tuple[float, ...] = (300.0, 600.0, 900.0)
    md_frames_per_T: int = 4
    md_stride: int = 10
    md_equil: int = 20
    dt_fs: float = 1.0
    hop_images: int = 5
    max_hops: int = 6
    hop_cutoff_factor: float = 1.5
    n_short: int = 10
    contact_fractions: tuple[float, float] = (0.6, 0.85)

    def check(self) -> None:
        """Raise :class:`InputError` naming the first bad setting."""
        for name in ("n_rattle", "md_frames_per_T", "md_stride", "md_equil", "hop_images",
                     "max_hops", "n_short"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise InputError(f"sampling: {name} must be a non-negative integer, got {value}")
        if self.md_stride < 1:
            raise InputError(f"sampling: md_stride must be at least 1, got {self.md_stride}")
        for name in ("strain_sigma", "dt_fs", "hop_cutoff_factor"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0 or (name != "strain_sigma" and value == 0):
                raise InputError(f"sampling: {name} must be a positive number, got {value}")
        lo, hi = self.rattle_A
        if not 0.0 <= lo <= hi:
            raise InputError(f"sampling: rattle_A must be 0 <= lo <= hi, got {self.rattle_A}")
        for T in self.temperatures_K:
            if not np.isfinite(T) or T <= 0:
                raise InputError(f"sampling: temperatures must be positive, got {T} K")


@dataclass
class SampleCell:
    """One cell to sample from: a name, the structure and its defect records."""

    name: str
    atoms: Atoms
    records: list = field(default_factory=list)


def sample_frames(
    perfect: Atoms,
    cells: Sequence[SampleCell],
    calc=None,
    plan: SamplePlan | None = None,
    seed: int = 0,
) -> list[Atoms]:
    """Make training frames of every kind (see the module docstring) from ``cells``.

    Parameters
    ----------
    perfect : Atoms
        The perfect supercell: its nearest-neighbour distances set the short-contact
        ranges, its voids the interstitial hop targets.
    cells : sequence of SampleCell
        The cells (perfect and defective) to sample.
    calc : ASE calculator, optional
        The MD calculator; without one, no MD frames are made.
    plan : SamplePlan, optional
        Frame counts and settings.
    seed : int
        Seed of every random choice.

    Returns
    -------
    list of Atoms
        Unlabelled frames, in the order rattle, md, hop, short_contact.
    """
    from ionmd.driver.defects import largest_voids

    plan = plan or SamplePlan()
    plan.check()
    rng = np.random.default_rng(seed)
    out: list[Atoms] = []

    def tag(frames: list[Atoms], cell: SampleCell, kind: str) -> list[Atoms]:
        for f in frames:
            f.info["config_type"] = kind
            f.info["cell_kind"] = cell.name
        return frames

    for cell in cells:
        out += tag([strain_and_rattle(cell.atoms, rng, plan.strain_sigma, plan.rattle_A)
                    for _ in range(plan.n_rattle)], cell, "rattle")
    if calc is not None and plan.md_frames_per_T > 0:
        for c, cell in enumerate(cells):
            for t, T_K in enumerate(plan.temperatures_K):
                out += tag(md_frames(cell.atoms, calc, T_K, plan.md_frames_per_T, plan.md_stride,
                                     plan.md_equil, plan.dt_fs, seed=seed * 1000 + 10 * c + t),
                           cell, "md")
    voids = None
    for cell in cells:
        for rec in cell.records:
            if voids is None:
                voids = largest_voids(perfect)[0]
            hops = hop_targets(cell.atoms, rec, voids, plan.hop_cutoff_factor, plan.max_hops)
            frames = hop_frames(cell.atoms, hops, plan.hop_images)
            for f in frames:
                f.info["defect"] = f"{rec.kind} {rec.species} {rec.site}"
            out += tag(frames, cell, "hop")
    if plan.n_short:
        ranges = contact_ranges_A(perfect, plan.contact_fractions)
        sources = [f for f in out if f.info["config_type"] in ("rattle", "md")] or \
            [c.atoms for c in cells]
        out += short_contact_frames(sources, plan.n_short, ranges, seed=seed + 7)
    return out


@dataclass
class SampleResult:
    """What :func:`sample_structure` wrote (JSON-serialisable)."""

    output: str
    n_frames: int
    counts: dict[str, int]
    cells: list[str]
    defects: list[dict]
    calculator: str | None
    labelled: bool
    contact_ranges_A: dict[str, list[float]]
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Return the result as a JSON string."""
        return json.dumps(asdict(self), indent=2)


def default_defects(species: Sequence[str]) -> tuple[list[str], list[str]]:
    """One vacancy and one largest-void interstitial cell per mobile species."""
    return [str(s) for s in species], [f"{s}@void" for s in species]


def _calculator(spec: str | None, elements: Sequence[str], flags: list[str]):
    """Return (NamedCalculator or None, spec used)."""
    from ionmd.models.calculators import make_calculator

    if spec is None:
        try:
            import chgnet  # noqa: F401
        except ImportError:
            flags.append("no_md: CHGNet (the default labeller) is not installed and no "
                         "--calculator was given; no MD frames")
            return None, None
        spec = "chgnet"
    if spec == "none":
        flags.append("no_md: --calculator none")
        return None, None
    named = make_calculator(spec, elements)
    if named.elements is not None:
        bad = sorted(set(elements) - set(named.elements))
        if bad:
            raise InputError(f"--calculator {spec}: cannot handle element(s) {', '.join(bad)}")
    return named, spec


def sample_structure(
    output: str | Path,
    source: str | Path | None,
    supercell: str | int | tuple[int, int, int] = 1,
    min_length_A: float | None = None,
    mobile: Sequence[str] | None = None,
    vacancies: Sequence[str] | None = None,
    interstitials: Sequence[str] | None = None,
    calculator: str | None = None,
    plan: SamplePlan | None = None,
    seed: int = 0,
    label: bool = False,
) -> SampleResult:
    """Sample training frames of a structure and write them as extended XYZ.

    Parameters
    ----------
    output : str or Path
        Extended-XYZ file to write.
    source : str or Path or None
        Structure file or built-in name (as for ``ionmd structure``).
    supercell, min_length_A
        The supercell: repeats, or the minimum perpendicular width in Å.
    mobile : sequence of str, optional
        Mobile species (default: every species of the structure); they get the default
        defects, one cell each.
    vacancies, interstitials : sequence of str, optional
        Defect specifications (:mod:`ionmd.driver.defects`), one defective cell each;
        when both are None, :func:`default_defects` of ``mobile``; empty lists: perfect only.
    calculator : str, optional
        MD calculator (``ionmd label --calculator`` syntax, or ``none``); default CHGNet
        when installed, else no MD (flagged).
    plan : SamplePlan, optional
        Frame counts.
    seed : int
        Seed of the defect choices and of the sampling.
    label : bool
        Label every frame with the calculator (needs one).
    """
    from ase.io import write

    from ionmd.driver.structure import build_with_records

    base = build_with_records(source, supercell, min_length_A=min_length_A)
    perfect = base.perfect
    present = list(dict.fromkeys(perfect.get_chemical_symbols()))
    species = list(mobile) if mobile else present
    for s in species:
        if s not in present:
            raise InputError(f"mobile species '{s}' is not in the structure "
                             f"(it has {', '.join(present)})")
    if vacancies is None and interstitials is None:
        vacancies, interstitials = default_defects(species)
    cells = [SampleCell("perfect", perfect)]
    for kind, specs in (("vacancy", vacancies or []), ("interstitial", interstitials or [])):
        for spec in specs:
            built = build_with_records(
                source, supercell, min_length_A=min_length_A, seed=seed,
                remove=[spec] if kind == "vacancy" else [],
                add=[spec] if kind == "interstitial" else [])
            cells.append(SampleCell(f"{kind} {spec}", built.atoms, built.records))
    flags: list[str] = []
    elements = sorted({s for c in cells for s in c.atoms.get_chemical_symbols()})
    named, spec_used = _calculator(calculator, elements, flags)
    if label and named is None:
        raise InputError("--label needs a calculator (give --calculator, or install CHGNet)")
    frames = sample_frames(perfect, cells, named.calc if named else None, plan, seed)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if label:
        from ionmd.models.label import label_frames

        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "frames.extxyz"
            write(raw, frames, format="extxyz")
            if out.exists():
                out.unlink()
            label_frames(raw, out, str(spec_used))
    else:
        write(out, frames, format="extxyz")
    counts: dict[str, int] = {}
    for f in frames:
        counts[f.info["config_type"]] = counts.get(f.info["config_type"], 0) + 1
    ranges = contact_ranges_A(perfect, (plan or SamplePlan()).contact_fractions)
    return SampleResult(
        output=str(out), n_frames=len(frames), counts=counts, cells=[c.name for c in cells],
        defects=[r.to_dict() for c in cells for r in c.records], calculator=spec_used,
        labelled=label, contact_ranges_A={f"{a}-{b}": [lo, hi] for (a, b), (lo, hi) in
                                          ranges.items()},
        flags=flags)
