"""Hops between sites and their mechanisms.

Site assignment has hysteresis (:func:`assign_sites`): an ion enters a site when it
comes within ``enter_radius_A`` of it, and leaves it only when it is closer to another
site or farther than ``leave_radius_A``; between sites it is *in transit* (-1). The
fraction of ion-frames in transit is reported (flag ``transit_fraction_high`` above
:data:`HIGH_TRANSIT_FRACTION`). A visit counts only if the ion stays at the site for
``min_residence_ps``; shorter visits are rattling and are ignored. A hop is a change
between two consecutive counted visits. Each hop is put in a symmetry-distinct hop
class (:mod:`ionmd.analysis.hops`) with its rate, and hops are classified into
mechanisms by the kinds of their sites, lattice (L) or interstitial (I):

* ``interstitialcy`` (knock-off): an I -> L hop into site s paired with an
  L -> I hop of another ion out of the same site s within ``window_ps``;
  one event = the two hops;
* ``direct_interstitial``: I -> I;
* ``vacancy``: L -> L (into a vacant lattice site), also by way of an interstitial
  site: an L -> I hop of an ion followed within ``window_ps`` by its I -> L hop into
  another lattice site is one event (back into its own site it is no event);
* ``frenkel_formation``: an unpaired L -> I hop (creates an interstitial and a vacancy);
* ``recombination``: an unpaired I -> L hop (an interstitial fills a vacancy).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ionmd.analysis.hops import HopClassifier, HopClassRate, carriers
from ionmd.analysis.sites import _IMAGES, SiteSet, find_sites, parse_fractional_sites, read_perfect
from ionmd.analysis.trajectory import Selection, Trajectory, load_trajectory
from ionmd.errors import InputError
from ionmd.lammpsio.datafile import ReferenceStructure, read_data_file

MECHANISMS = ("interstitialcy", "direct_interstitial", "vacancy", "frenkel_formation", "recombination")

HIGH_TRANSIT_FRACTION = 0.2
"""Above this fraction of ion-frames in transit the result carries ``transit_fraction_high``."""

__all__ = ["MECHANISMS", "Hop", "MechanismResult", "SiteOptions", "assign_sites", "detect_hops", "classify_hops",
           "analyse_mechanisms", "parse_fractional_sites", "merge_results"]


@dataclass
class SiteOptions:
    """How sites are found and ions assigned: the options ``ionmd mechanism`` and ``ionmd report`` share.

    Attributes
    ----------
    interstitial_frac : ndarray (n, 3) or None
        Interstitial sites (fractional, reference cell); empty: none; None: automatic.
    perfect : str or None
        Perfect-structure file whose mobile positions are the lattice sites.
    min_residence_ps, window_ps : float
        Minimum visit; longest time between the two hops of a knock-off.
    enter_radius_A, leave_radius_A : float or None
        Hysteresis radii (default per site: 0.4 and 0.6 x the distance to its nearest other site).
    symprec_A : float
        Position tolerance of the symmetry search.
    """

    interstitial_frac: np.ndarray | None = None
    perfect: str | None = None
    min_residence_ps: float = 0.1
    window_ps: float = 0.5
    enter_radius_A: float | None = None
    leave_radius_A: float | None = None
    symprec_A: float = 0.1

    def sites(self, ref: ReferenceStructure, species: list[str]) -> SiteSet:
        """The sites of ``species`` in ``ref`` with these options."""
        perfect = read_perfect(self.perfect) if self.perfect else None
        return find_sites(ref, species, interstitial_frac=self.interstitial_frac, perfect=perfect,
                          symprec_A=self.symprec_A)


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
    """Event counts and rates per mechanism and per hop class for one trajectory (or seeds summed).

    JSON keys documented in docs/analysis.md. ``hop_classes`` holds one
    :class:`ionmd.analysis.hops.HopClassRate` per class seen; ``transit_fraction`` is the
    fraction of ion-frames assigned to no site; ``flags`` lists why numbers are not to
    be quoted (``transit_fraction_high``).
    """

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
    leave_radius_A: float | None = None
    transit_fraction: float = 0.0
    n_ion_frames: int = 0
    n_vacancies: int = 0
    n_interstitial_ions: int = 0
    sublattices: list[dict] = field(default_factory=list)
    hop_classes: list[HopClassRate] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hop_classes"] = [h.to_dict() for h in self.hop_classes]
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def update_rates(self) -> None:
        """Recompute rates, Poisson errors and flags from the counts and the duration."""
        dur = self.duration_ps if self.duration_ps > 0 else float("nan")
        self.rates_per_ps = {m: self.counts.get(m, 0) / dur for m in MECHANISMS}
        # Poisson error; with zero events the one-sigma upper scale is ~1 event
        self.rates_err_per_ps = {m: max(np.sqrt(self.counts.get(m, 0)), 1.0) / dur for m in MECHANISMS}
        for h in self.hop_classes:
            h.duration_ps = self.duration_ps
            h.update()
        self.flags = [f for f in self.flags if f != "transit_fraction_high"]
        if self.transit_fraction > HIGH_TRANSIT_FRACTION:
            self.flags.append("transit_fraction_high")

    def summary(self) -> str:
        lines = [f"{self.source}: {self.n_ions} {self.species} ions, {self.n_lattice_sites} lattice "
                 f"({self.n_vacancies} vacant) + {self.n_interstitial_sites} interstitial sites, "
                 f"{self.duration_ps:.4g} ps, {self.n_hops} hops",
                 "  sublattices: " + ", ".join(f"{x['label']} (Wyckoff {x['wyckoff']}, {x['n_sites']} sites)"
                                               for x in self.sublattices),
                 f"  in transit: {100 * self.transit_fraction:.1f}% of ion-frames"
                 + ("  WARNING: high (transit_fraction_high)" if "transit_fraction_high" in self.flags else "")]
        for m in MECHANISMS:
            lines.append(f"  {m:20s} {self.counts[m]:6d} events   rate {self.rates_per_ps[m]:.4g} "
                         f"± {self.rates_err_per_ps[m]:.2g} /ps")
        if self.hop_classes:
            lines.append("  hop classes:")
        for h in self.hop_classes:
            lo, hi = h.rate_ci95_per_ps or (float("nan"), float("nan"))
            lines.append(f"    {h.hop_class.label:34s} {h.count:6d} hops   {h.rate_per_ps:.4g} /ps {h.basis} "
                         f"(95% {lo:.3g} .. {hi:.3g})" + (f"  [{', '.join(h.flags)}]" if h.flags else ""))
        return "\n".join(lines)


def assign_sites(traj: Trajectory, sites: SiteSet, enter_radius_A: float | np.ndarray,
                 leave_radius_A: float | np.ndarray | None = None) -> np.ndarray:
    """Site index of every ion in every frame, with hysteresis (-1: in transit).

    An ion enters the nearest site when it is within ``enter_radius_A`` of it. It
    leaves its site only when another site is nearer or it is farther than
    ``leave_radius_A`` (default: ``enter_radius_A``, i.e. no hysteresis) from it; it
    then enters the nearer site if within ``enter_radius_A``, else it is in transit.
    In the first frame every ion within ``leave_radius_A`` of its nearest site is on it.
    The radii are one number or one per site. Positions are mapped through each
    frame's fractional coordinates into the reference cell, so a changing (NPT) box
    is followed.
    """
    n_sites = len(sites.frac)
    enter = np.broadcast_to(np.asarray(enter_radius_A, dtype=float), (n_sites,))
    leave = enter if leave_radius_A is None else np.maximum(
        np.broadcast_to(np.asarray(leave_radius_A, dtype=float), (n_sites,)), enter)
    n_f, n_i, _ = traj.positions_A.shape
    frac = np.empty_like(traj.positions_A)
    for t in range(n_f):
        frac[t] = np.linalg.solve(traj.cell_A[t].T, (traj.positions_A[t] - traj.origin_A[t]).T).T
    frac = np.mod(frac, 1.0)
    imgs = (sites.frac[None] + _IMAGES[:, None]).reshape(-1, 3)
    idx = np.tile(np.arange(len(sites.frac)), len(_IMAGES))
    tree = cKDTree(imgs @ sites.cell_A)
    d_near, k = tree.query(frac.reshape(-1, 3) @ sites.cell_A)
    d_near = d_near.reshape(n_f, n_i)
    near = idx[k].reshape(n_f, n_i)
    out = np.full((n_f, n_i), -1, dtype=np.int64)
    cur = np.where(d_near[0] <= leave[near[0]], near[0], -1)
    out[0] = cur
    cell = sites.cell_A
    for t in range(1, n_f):
        on = cur >= 0
        d = frac[t] - sites.frac[np.where(on, cur, 0)]
        d -= np.round(d)
        d_cur = np.linalg.norm(d @ cell, axis=1)
        stay = on & (d_cur <= leave[cur]) & ~((near[t] != cur) & (d_near[t] < d_cur))
        cur = np.where(stay, cur, np.where(d_near[t] <= enter[near[t]], near[t], -1))
        out[t] = cur
    return out


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
    unpaired_in: list[Hop] = []
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
            unpaired_in.append(h)
        else:
            used_out.add(best)
            events.append(("interstitialcy", [h, out_of[best]]))
    # one ion through an interstitial site: L -> I then, within the window, I -> L
    next_in = {(h.ion, h.from_site): h for h in sorted(unpaired_in, key=lambda x: -x.arrive_frame)}
    used_in: set[int] = set()
    for j, g in enumerate(out_of):
        if j in used_out:
            continue
        h = next_in.get((g.ion, g.to_site))
        if h is None or id(h) in used_in or not 0 <= h.leave_frame - g.arrive_frame <= window_frames:
            events.append(("frenkel_formation", [g]))
            continue
        used_in.add(id(h))
        if h.to_site != g.from_site:  # a lattice hop by way of the interstitial site
            events.append(("vacancy", [g, h]))
        # else: a short excursion back to its own site, no event
    events += [("recombination", [h]) for h in unpaired_in if id(h) not in used_in]
    for h in hops:
        if h.from_kind == "I" and h.to_kind == "I":
            events.append(("direct_interstitial", [h]))
        elif h.from_kind == "L" and h.to_kind == "L":
            events.append(("vacancy", [h]))
    events.sort(key=lambda e: min(x.arrive_frame for x in e[1]))
    return events


def defect_counts(site_of: np.ndarray, sites: SiteSet) -> tuple[int, int]:
    """Vacancies of the mobile sublattices and ions on interstitial sites.

    The interstitial count is the median over the frames of the interstitial sites held
    (an ion in transit still holds the last site it was on). The vacancy count follows
    from conservation of the mobile ions: every ion belongs to a lattice site or to an
    interstitial one, so vacancies = lattice sites - ions + interstitials. Counting empty
    lattice sites frame by frame instead would add every ion in transit whose old site
    another ion has taken, and so overstate the defect count (and understate the rate
    per defect) in a lattice with much motion between sites.
    """
    is_lat = sites.kind == "L"
    n_lat = int(is_lat.sum())
    n_f, n_i = site_of.shape
    last = np.where(site_of >= 0, np.arange(n_f)[:, None], 0)
    np.maximum.accumulate(last, axis=0, out=last)
    held = site_of[last, np.arange(n_i)[None, :]]
    inter = []
    for row in held:
        occ = np.unique(row[row >= 0])
        inter.append(int(np.sum(~is_lat[occ])))
    n_inter = int(np.median(inter)) if inter else 0
    return max(0, n_lat - n_i + n_inter), n_inter


def mechanisms_from_trajectory(traj: Trajectory, sites: SiteSet, species: str, min_residence_ps: float = 0.1,
                               window_ps: float = 0.5, assign_radius_A: float | None = None,
                               leave_radius_A: float | None = None) -> MechanismResult:
    """Assign sites, detect hops, and count events per mechanism and per hop class for one trajectory.

    ``assign_radius_A`` is the enter radius, ``leave_radius_A`` the leave radius; by
    default each site has its own, 0.4 and 0.6 x the distance to its nearest other
    site (the result records the smallest of each).
    """
    dt = traj.dt_ps
    if len(sites.frac) < 2 and (assign_radius_A is None or leave_radius_A is None):
        raise InputError("a single site: give --assign-radius-A and --leave-radius-A")
    nn = sites.nearest_site_distance_A() if len(sites.frac) > 1 else np.zeros(len(sites.frac))
    enter = 0.4 * nn if assign_radius_A is None else np.full(len(sites.frac), float(assign_radius_A))
    leave = np.maximum(0.6 * nn, enter) if leave_radius_A is None else np.full(len(sites.frac),
                                                                                float(leave_radius_A))
    assign_radius_A, leave_radius_A = float(enter.min()), float(leave.min())
    site_of = assign_sites(traj, sites, enter, leave)
    min_frames = max(1, int(np.ceil(min_residence_ps / dt - 1e-9))) if dt > 0 else 1
    window_frames = max(1, int(round(window_ps / dt))) if dt > 0 else 1
    hops = detect_hops(site_of, sites.kind, min_frames)
    events = classify_hops(hops, window_frames)
    duration = float(traj.time_ps[-1] - traj.time_ps[0])
    counts = {m: 0 for m in MECHANISMS}
    for m, _ in events:
        counts[m] += 1
    n_vac, n_int = defect_counts(site_of, sites)
    classifier = HopClassifier(sites)
    class_count: dict[int, int] = {}
    for h in hops:
        c = classifier.classify(h.from_site, h.to_site)
        class_count[c] = class_count.get(c, 0) + 1
    rates = []
    for c in sorted(class_count, key=lambda c: -class_count[c]):
        hc = classifier.classes[c]
        n, basis = carriers(hc, n_vac, n_int, traj.n_ions)
        rates.append(HopClassRate(hc, class_count[c], duration, n, basis))
    ev = [MechanismEvent(m, float(min(h.arrive_frame for h in hs) * dt),
                         [int(traj.ids[h.ion]) for h in hs], sorted({h.to_site for h in hs} | {h.from_site for h in hs}))
          for m, hs in events]
    res = MechanismResult(species, counts, {}, {}, len(hops), traj.n_ions, sites.n_lattice,
                          sites.n_interstitial, duration, min_residence_ps, window_ps, float(assign_radius_A),
                          events=ev, source=traj.source, leave_radius_A=float(leave_radius_A),
                          transit_fraction=float(np.mean(site_of < 0)), n_ion_frames=int(site_of.size),
                          n_vacancies=n_vac, n_interstitial_ions=n_int,
                          sublattices=[s.to_dict() for s in sites.sublattices], hop_classes=rates)
    res.update_rates()
    return res


def merge_results(results: list[MechanismResult]) -> MechanismResult:
    """Sum independent runs (seeds) of the same system: counts, durations, hops per class and transit frames."""
    if not results:
        raise InputError("no mechanism results to merge")
    first = results[0]
    out = MechanismResult(**{k: getattr(first, k) for k in first.__dataclass_fields__})
    out.counts = dict(first.counts)
    out.events = list(first.events)
    out.flags = list(first.flags)
    by_label = {h.hop_class.label: HopClassRate(h.hop_class, h.count, h.duration_ps, h.n_carriers, h.basis)
                for h in first.hop_classes}
    transit = first.transit_fraction * first.n_ion_frames
    for r in results[1:]:
        out.duration_ps += r.duration_ps
        out.n_hops += r.n_hops
        out.n_ion_frames += r.n_ion_frames
        transit += r.transit_fraction * r.n_ion_frames
        for m in MECHANISMS:
            out.counts[m] = out.counts.get(m, 0) + r.counts.get(m, 0)
        out.events.extend(r.events)
        out.source += f", {r.source}"
        for h in r.hop_classes:
            if h.hop_class.label in by_label:
                by_label[h.hop_class.label].count += h.count
            else:
                by_label[h.hop_class.label] = HopClassRate(h.hop_class, h.count, 0.0, h.n_carriers, h.basis)
    out.transit_fraction = transit / out.n_ion_frames if out.n_ion_frames else 0.0
    out.hop_classes = sorted(by_label.values(), key=lambda h: -h.count)
    out.update_rates()
    return out


def analyse_mechanisms(dump: str | Path, reference: str | Path, selection: Selection, dt_fs: float,
                       interstitial_frac: np.ndarray | None = None, min_residence_ps: float = 0.1,
                       window_ps: float = 0.5, assign_radius_A: float | None = None,
                       drift_correction: bool = True, options: SiteOptions | None = None) -> MechanismResult:
    """Mechanism analysis of a dump against a reference LAMMPS data file.

    The reference's type map (``type_map:`` header or Masses comments) names its atoms;
    ``selection.type_map`` overrides it. ``options`` (when given) replaces the
    individual site options.
    """
    if options is None:
        options = SiteOptions(interstitial_frac=interstitial_frac, min_residence_ps=min_residence_ps,
                              window_ps=window_ps, enter_radius_A=assign_radius_A)
    ref = read_data_file(reference, type_map=selection.type_map or None)
    species = selection.species or sorted({ref.type_map.get(t, f"type {t}") for t in selection.types})
    if not selection.species:
        ref.symbols = [ref.type_map.get(int(t), f"type {int(t)}") for t in ref.types]
    sites = options.sites(ref, species)
    sel = selection if (selection.type_map or selection.types) else Selection(
        species=selection.species, type_map=ref.type_map)
    traj = load_trajectory(dump, sel, dt_fs, drift_correction=drift_correction, system_symbols=ref.symbols)
    return mechanisms_from_trajectory(traj, sites, ",".join(species), options.min_residence_ps, options.window_ps,
                                      options.enter_radius_A, options.leave_radius_A)
