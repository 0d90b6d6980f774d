"""Hops between sites and their mechanisms.

Each mobile ion is assigned, frame by frame, to the nearest lattice (L) or
interstitial (I) site within ``assign_radius_A`` (else it is in transit). A
visit counts only if the ion stays at the site for ``min_residence_ps``;
shorter visits and transits are rattling and are ignored. A hop is a change
between two consecutive counted visits. Hops are classified:

* ``interstitialcy`` (knock-off): an I -> L hop into site s paired with an
  L -> I hop of another ion out of the same site s within ``window_ps``;
  one event = the two hops;
* ``direct_interstitial``: I -> I;
* ``vacancy``: L -> L (into a vacant lattice site);
* ``frenkel_formation``: an unpaired L -> I hop (creates an interstitial and a vacancy);
* ``recombination``: an unpaired I -> L hop (an interstitial fills a vacancy).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ionmd.analysis.datafile import read_data_file
from ionmd.analysis.sites import _IMAGES, SiteSet, find_sites, parse_fractional_sites
from ionmd.analysis.trajectory import Selection, Trajectory, load_trajectory

MECHANISMS = ("interstitialcy", "direct_interstitial", "vacancy", "frenkel_formation", "recombination")

__all__ = ["MECHANISMS", "Hop", "MechanismResult", "assign_sites", "detect_hops", "classify_hops",
           "analyse_mechanisms", "parse_fractional_sites"]


@dataclass
class Hop:
    """One hop of one ion between counted visits (frames are indices into the trajectory)."""

    ion: int
    from_site: int
    to_site: int
    from_kind: str
    to_kind: str
    leave_frame: int
    arrive_frame: int


@dataclass
class MechanismEvent:
    """A classified event: its mechanism, time (ps), ions (atom ids) and sites involved."""

    mechanism: str
    time_ps: float
    ion_ids: list[int]
    sites: list[int]


@dataclass
class MechanismResult:
    """Event counts and rates per mechanism for one trajectory. JSON keys documented in docs/analysis.md."""

    species: str
    counts: dict[str, int]
    rates_per_ps: dict[str, float]
    rates_err_per_ps: dict[str, float]
    n_hops: int
    n_ions: int
    n_lattice_sites: int
    n_interstitial_sites: int
    duration_ps: float
    min_residence_ps: float
    window_ps: float
    assign_radius_A: float
    T_K: float | None = None
    events: list[MechanismEvent] = field(default_factory=list)
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def summary(self) -> str:
        lines = [f"{self.source}: {self.n_ions} {self.species} ions, {self.n_lattice_sites} lattice + "
                 f"{self.n_interstitial_sites} interstitial sites, {self.duration_ps:.4g} ps, {self.n_hops} hops"]
        for m in MECHANISMS:
            lines.append(f"  {m:20s} {self.counts[m]:6d} events   rate {self.rates_per_ps[m]:.4g} "
                         f"± {self.rates_err_per_ps[m]:.2g} /ps")
        return "\n".join(lines)


def assign_sites(traj: Trajectory, sites: SiteSet, assign_radius_A: float) -> np.ndarray:
    """Site index of every ion in every frame (-1 when farther than ``assign_radius_A`` from all sites).

    Positions are mapped through each frame's fractional coordinates into the reference cell,
    so a changing (NPT) box is followed.
    """
    n_f, n_i, _ = traj.positions_A.shape
    frac = np.empty_like(traj.positions_A)
    for t in range(n_f):
        frac[t] = np.linalg.solve(traj.cell_A[t].T, (traj.positions_A[t] - traj.origin_A[t]).T).T
    frac = np.mod(frac, 1.0).reshape(-1, 3)
    imgs = (sites.frac[None] + _IMAGES[:, None]).reshape(-1, 3)
    idx = np.tile(np.arange(len(sites.frac)), len(_IMAGES))
    tree = cKDTree(imgs @ sites.cell_A)
    d, k = tree.query(frac @ sites.cell_A, distance_upper_bound=assign_radius_A)
    out = np.full(len(d), -1, dtype=np.int64)
    ok = np.isfinite(d)
    out[ok] = idx[k[ok]]
    return out.reshape(n_f, n_i)


def detect_hops(site_of: np.ndarray, kinds: np.ndarray, min_residence_frames: int) -> list[Hop]:
    """Hops between visits that last at least ``min_residence_frames`` frames."""
    hops: list[Hop] = []
    n_f, n_i = site_of.shape
    for i in range(n_i):
        s = site_of[:, i]
        change = np.flatnonzero(np.diff(s)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [n_f]])
        prev = None  # (site, last_frame)
        for a, b in zip(starts, ends, strict=True):
            site = int(s[a])
            if site < 0 or b - a < min_residence_frames:
                continue
            if prev is not None and prev[0] != site:
                hops.append(Hop(i, prev[0], site, str(kinds[prev[0]]), str(kinds[site]), prev[1], int(a)))
            prev = (site, int(b - 1))
    return hops


def classify_hops(hops: list[Hop], window_frames: int) -> list[tuple[str, list[Hop]]]:
    """Group hops into mechanism events (see the module docstring)."""
    events: list[tuple[str, list[Hop]]] = []
    into = [h for h in hops if h.from_kind == "I" and h.to_kind == "L"]
    out_of = [h for h in hops if h.from_kind == "L" and h.to_kind == "I"]
    used_out: set[int] = set()
    by_site: dict[int, list[int]] = {}
    for j, g in enumerate(out_of):
        by_site.setdefault(g.from_site, []).append(j)
    for h in sorted(into, key=lambda x: x.arrive_frame):
        best, best_dt = None, None
        for j in by_site.get(h.to_site, []):
            g = out_of[j]
            if j in used_out or g.ion == h.ion:
                continue
            dt = abs(h.arrive_frame - g.leave_frame)
            if dt <= window_frames and (best_dt is None or dt < best_dt):
                best, best_dt = j, dt
        if best is None:
            events.append(("recombination", [h]))
        else:
            used_out.add(best)
            events.append(("interstitialcy", [h, out_of[best]]))
    for j, g in enumerate(out_of):
        if j not in used_out:
            events.append(("frenkel_formation", [g]))
    for h in hops:
        if h.from_kind == "I" and h.to_kind == "I":
            events.append(("direct_interstitial", [h]))
        elif h.from_kind == "L" and h.to_kind == "L":
            events.append(("vacancy", [h]))
    events.sort(key=lambda e: min(x.arrive_frame for x in e[1]))
    return events


def mechanisms_from_trajectory(traj: Trajectory, sites: SiteSet, species: str, min_residence_ps: float = 0.1,
                               window_ps: float = 0.5, assign_radius_A: float | None = None) -> MechanismResult:
    """Assign sites, detect hops and count events per mechanism for one trajectory."""
    dt = traj.dt_ps
    if assign_radius_A is None:
        assign_radius_A = 0.4 * sites.min_separation_A()
    site_of = assign_sites(traj, sites, assign_radius_A)
    min_frames = max(1, int(np.ceil(min_residence_ps / dt - 1e-9)))
    window_frames = max(1, int(round(window_ps / dt)))
    hops = detect_hops(site_of, sites.kind, min_frames)
    events = classify_hops(hops, window_frames)
    duration = float(traj.time_ps[-1] - traj.time_ps[0])
    counts = {m: 0 for m in MECHANISMS}
    for m, _ in events:
        counts[m] += 1
    rates = {m: counts[m] / duration for m in MECHANISMS}
    # Poisson error; with zero events the one-sigma upper scale is ~1 event
    errs = {m: max(np.sqrt(counts[m]), 1.0) / duration for m in MECHANISMS}
    ev = [MechanismEvent(m, float(min(h.arrive_frame for h in hs) * dt),
                         [int(traj.ids[h.ion]) for h in hs], sorted({h.to_site for h in hs} | {h.from_site for h in hs}))
          for m, hs in events]
    return MechanismResult(species, counts, rates, errs, len(hops), traj.n_ions, sites.n_lattice,
                           sites.n_interstitial, duration, min_residence_ps, window_ps, float(assign_radius_A),
                           events=ev, source=traj.source)


def analyse_mechanisms(dump: str | Path, reference: str | Path, selection: Selection, dt_fs: float,
                       interstitial_frac: np.ndarray | None = None, min_residence_ps: float = 0.1,
                       window_ps: float = 0.5, assign_radius_A: float | None = None,
                       drift_correction: bool = True) -> MechanismResult:
    """Mechanism analysis of a dump against a reference LAMMPS data file.

    The reference's type map (``type_map:`` header or Masses comments) names its atoms;
    ``selection.type_map`` overrides it.
    """
    ref = read_data_file(reference, type_map=selection.type_map or None)
    species = selection.species or sorted({ref.type_map.get(t, f"type {t}") for t in selection.types})
    if not selection.species:
        ref.symbols = [ref.type_map.get(int(t), f"type {int(t)}") for t in ref.types]
    sites = find_sites(ref, species, interstitial_frac=interstitial_frac)
    sel = selection if (selection.type_map or selection.types) else Selection(
        species=selection.species, type_map=ref.type_map)
    traj = load_trajectory(dump, sel, dt_fs, drift_correction=drift_correction, system_symbols=ref.symbols)
    return mechanisms_from_trajectory(traj, sites, ",".join(species), min_residence_ps, window_ps, assign_radius_A)
