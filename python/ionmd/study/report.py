"""The demo's report: ``report.md``, a self-contained ``report.html`` and ``demo.json``.

The main table has one row per model and the CHGNet reference row, with the columns
of the published LiF study: training-set size, Ea ± 95% CI (Arrhenius), D(300 K)
extrapolated, NEB barriers of the knock-off and direct hops (with the cell they come
from), the fraction of knock-off hops in the MD, and the measured µs/atom/step. A
value that is missing says ``n/a`` and why.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ionmd.analysis.arrhenius import ArrheniusResult
from ionmd.analysis.report import markdown_to_html
from ionmd.study.analysis import DemoAnalysis
from ionmd.study.figures import plot_arrhenius_models, plot_msd_models, plot_neb_profiles
from ionmd.study.neb import NEBOutcome, ReferenceBarrier, neb_cell_text
from ionmd.study.plan import MODEL_LABELS, MODELS_DIR, NEB_CASES, DemoPlan, cell_label

TABLE_HEADER = ("model", "training set (CHGNet-labelled frames)", "Ea ± 95% CI (eV)",
                "Ea from hop rate ± 95% CI (eV)", "D(300 K) (cm²/s) [95% CI]", "NEB knock-off (eV)", "NEB direct (eV)",
                "NEB cell", "knock-off fraction of hops", "µs/atom/step")
CHGNET_TRAINING = "MPtrj (Materials Project relaxations, about 1.58 million structures)"
NA = "n/a"


@dataclass
class RunContext:
    """Facts about this invocation that the report states."""

    n_ranks: int
    wall_s: float
    stage_wall_s: dict[str, float]
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    md_done: int
    md_runs: int
    md_failures: list[str]
    resumed: bool
    date_utc: str
    history: list[dict] | None = None


def _g(x: float | None, fmt: str = ".3g") -> str:
    return NA if x is None or not math.isfinite(x) else format(x, fmt)


def model_facts(models_json: Path = MODELS_DIR / "models.json") -> dict[str, dict]:
    """The bundled models' provenance (``inputs/models/models.json``) keyed by file name."""
    if not models_json.is_file():
        return {}
    return {v.get("file", k): v for k, v in json.loads(models_json.read_text()).items()}


def training_text(facts: dict | None) -> str:
    """E.g. ``300 (+42 valid, 42 test); force RMSE 27.6 meV/Å``."""
    if not facts or "n_train" not in facts:
        return NA
    text = f"{facts['n_train']} (+{facts.get('n_valid', '?')} valid, {facts.get('n_test', '?')} test)"
    if facts.get("test_force_rmse_meV_A") is not None:
        text += f"; held-out force RMSE {facts['test_force_rmse_meV_A']:.1f} meV/Å"
    return text


def _barrier_text(o: NEBOutcome | None) -> str:
    if o is None:
        return f"{NA} (not run)"
    if o.result is None:
        return f"{NA} (NEB failed)"
    if not o.result.converged:
        return f"{NA} (not converged: F = {o.result.max_force_eV_A:.2g} eV/Å)"
    return f"{o.result.barrier_forward_eV:.3f}"


def table_rows(plan: DemoPlan, ana: DemoAnalysis, nebs: list[NEBOutcome],
               reference: dict[str, ReferenceBarrier]) -> list[list[str]]:
    """The main table: one row per model, then the CHGNet reference row."""
    facts = model_facts()
    rows = []
    sw = ana.sweep
    for model, fname in plan.models.items():
        fit = sw.arrhenius.get(model) if sw else None
        if fit is not None:
            ea = _ea_text(fit, "")
            dlo, dhi = fit.D300K_ci95_cm2_s
            d300 = f"{_g(fit.D300K_cm2_s, '.2e')} [{_g(dlo, '.1e')}, {_g(dhi, '.1e')}]"
        else:
            n_pos = sum(1 for r in (sw.diffusion.get(model, {}) if sw else {}).values()
                        if r.D_cm2_s > 0)
            ea = d300 = f"{NA} (no fit: D > 0 at {n_pos} temperature(s), 2 needed)"
        by_case = {o.case: o for o in nebs if o.model == model}
        ea_hop = _ea_text(ana.hop_arrhenius.get(model), "no fit: interstitial hops at fewer "
                                                          "than 2 temperatures")
        hops = ana.hops.get(model)
        if hops is None:
            frac = f"{NA} (no mechanism analysis)"
        elif hops.knockoff_fraction is None:
            frac = f"{NA} (no interstitial hop seen)"
        else:
            frac = f"{hops.knockoff_fraction:.2f} ({hops.knockoff} of {hops.knockoff + hops.direct})"
        cost = ana.costs.get(model)
        cost_text = (f"{cost.us_per_atom_step:.0f}" if cost and cost.us_per_atom_step
                     else f"{NA} (no timed run)")
        rows.append([f"{MODEL_LABELS.get(model, model)} (bundled {fname})",
                     training_text(facts.get(fname)), ea, ea_hop, d300,
                     _barrier_text(by_case.get("knockoff")), _barrier_text(by_case.get("direct")),
                     cell_label(plan.neb_cells), frac, cost_text])
    ref_cells = sorted({f"{r.cell.split()[0]} ({r.n_atoms} atoms)" for r in reference.values()})
    rows.append(["CHGNet 0.3.0 (the labeller; reference, ASE CI-NEB)", CHGNET_TRAINING,
                 f"{NA} (no CHGNet MD)", f"{NA} (no CHGNet MD)", f"{NA} (no CHGNet MD)",
                 _ref_text(reference.get("knockoff")), _ref_text(reference.get("direct")),
                 ", ".join(ref_cells) or NA, f"{NA} (no CHGNet MD)", f"{NA} (not run in LAMMPS)"])
    return rows


def _ea_text(fit: ArrheniusResult | None, why_missing: str) -> str:
    """``Ea ± half the 95% interval`` (eV), or ``n/a (why)``."""
    if fit is None:
        return f"{NA} ({why_missing})"
    lo, hi = fit.Ea_ci95_eV
    return f"{fit.Ea_eV:.3f} ± {(hi - lo) / 2:.3f}"


def _ref_text(ref: ReferenceBarrier | None) -> str:
    if ref is None:
        return f"{NA} (no reference file)"
    return f"{ref.barrier_eV:.3f}" if ref.barrier_eV is not None else f"{NA} (not converged)"


def _md_table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    clean = [[c.replace("|", "/") for c in r] for r in rows]
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in clean])


def per_temperature_rows(ana: DemoAnalysis) -> list[list[str]]:
    """D per (model, T) with the seeds combined, and the hops seen."""
    rows = []
    sw = ana.sweep
    for model, by_T in (sw.diffusion.items() if sw else []):
        for T, r in sorted(by_T.items()):
            lo, hi = r.D_ci95_cm2_s
            m = ana.mechanisms.get(model, {}).get(T)
            hops = (f"{m.counts.get('interstitialcy', 0)} / {m.counts.get('direct_interstitial', 0)}"
                    f" / {sum(m.counts.values()) - m.counts.get('interstitialcy', 0) - m.counts.get('direct_interstitial', 0)}"
                    if m else NA)
            rows.append([MODEL_LABELS.get(model, model), f"{T:g}", _g(r.D_cm2_s, ".2e"),
                         f"[{_g(lo, '.1e')}, {'unbounded' if hi is None else _g(hi, '.1e')}]",
                         str(r.n_runs), f"{r.fit_window_ps[0]:.2g} to {r.fit_window_ps[1]:.2g}",
                         "yes" if r.diffusive else "no", hops])
    return rows


def warnings_text(plan: DemoPlan, ctx: RunContext, nebs: list[NEBOutcome],
                  ana: DemoAnalysis | None = None) -> list[str]:
    """The report's 'read this first' list."""
    w = ["Provenance: both models were fitted to CHGNet 0.3.0 labels (energies, forces and "
         "stresses of LiF frames; training-set sizes in the table, recipe in inputs/README.md). CHGNet is a universal machine-learning "
         "potential standing in for DFT here; the fitted models can at best reproduce CHGNet, "
         "whose own barriers are the reference row."]
    if plan.md_cells < 3:
        w.append(f"Cell size: the MD uses the {cell_label(plan.md_cells)} cell. Diffusion, Ea and "
                 "the hop statistics of this defect are NOT converged in cell size (CHGNet's "
                 "direct-hop barrier is 0.34 eV at 65 atoms but 0.22 eV at 217). Use --full "
                 "(at least 217 atoms) for numbers to quote.")
    w.append("Lattice parameter: every cell uses a = 4.03 Å (the training data's), in NVT at "
             "every temperature (no thermal expansion). CHGNet's own equilibrium a0 is 4.09 Å, "
             "where its barriers are 25-35 meV lower (docs/neb.md).")
    if plan.mode != "full":
        w.append(f"Wide error bars: {len(plan.temperatures_K)} temperatures x {len(plan.seeds)} "
                 f"seed(s) of {plan.n_prod * plan.dt_fs / 1000:g} ps production is a short "
                 "sample: a handful of hops per run, so D, Ea and D(300 K) carry wide intervals, "
                 "and the 300 K value is a long extrapolation.")
    points = [r for by_T in (ana.sweep.diffusion.values() if ana and ana.sweep else [])
              for r in by_T.values()]
    bad = [r for r in points if not r.diffusive or r.D_cm2_s <= 0]
    if bad:
        w.append(f"Diffusive regime not reached: at {len(bad)} of {len(points)} (model, "
                 "temperature) points the MSD fit window is not diffusive (log-log slope below "
                 "0.85) or D is not positive (see the per-temperature table). Few hops move "
                 "only 2 of the Li ions each, so the vibrational MSD dominates short runs: treat "
                 "these D values, Ea and D(300 K) as unreliable; the knock-off fraction, the "
                 "hop-rate Ea and the NEB barriers do not depend on them.")
    if plan.mode == "tiny":
        w.append("TINY MODE (tests only): a few MD steps and NEB steps; no number here means "
                 "anything.")
    if ctx.md_failures:
        w.append(f"{len(ctx.md_failures)} MD run(s) failed and are left out: "
                 + "; ".join(ctx.md_failures))
    for o in nebs:
        if o.error:
            w.append(f"NEB {o.model} {o.case} failed: {o.error}")
    return w


def _figure_lines(figs: dict[str, Path], out: Path) -> list[str]:
    return [f"![{name}]({p.relative_to(out)})" for name, p in figs.items()]


def embed_images(markdown: str, base: Path) -> str:
    """Replace ``![alt](file.png)`` by ``![alt](data:image/png;base64,...)``."""
    def repl(m: re.Match) -> str:
        data = base64.b64encode((base / m.group(2)).read_bytes()).decode("ascii")
        return f"![{m.group(1)}](data:image/png;base64,{data})"

    return re.sub(r"^!\[([^\]]*)\]\(([^)]+\.png)\)$", repl, markdown, flags=re.MULTILINE)


@dataclass
class DemoReport:
    """The files written and the main table (header and rows, as in ``report.md``)."""

    markdown: Path
    html: Path
    header: list[str]
    rows: list[list[str]]

    def table_text(self) -> str:
        """The main table as Markdown lines, for the terminal."""
        return "\n".join(_md_table(self.header, self.rows))


def write_report(plan: DemoPlan, out: Path, ana: DemoAnalysis, nebs: list[NEBOutcome],
                 reference: dict[str, ReferenceBarrier], ctx: RunContext) -> DemoReport:
    """Write ``report.md``, ``report.html`` (images embedded), ``demo.json`` and the PNGs."""
    figdir = out / "figures"
    figdir.mkdir(exist_ok=True)
    md_cell = cell_label(plan.md_cells)
    figs = {
        "Arrhenius plot, both models": plot_arrhenius_models(ana.sweep, figdir / "arrhenius.png",
                                                             md_cell, ana.hop_arrhenius),
        "Li MSD": plot_msd_models(ana.sweep, figdir / "msd.png"),
        "NEB energy profiles": plot_neb_profiles(nebs, reference, figdir / "neb.png"),
    }
    rows = table_rows(plan, ana, nebs, reference)
    temps = ", ".join(f"{t:g}" for t in plan.temperatures_K)
    lines = [
        f"# ionmd demo: Li interstitial diffusion in LiF ({plan.mode} mode)", "",
        f"Bundled MACE and DeePMD models run in LAMMPS through pair_style mlip/torch: NVT MD "
        f"(CSVR thermostat) of rock-salt LiF with one Li interstitial, {md_cell}, a = 4.03 Å, "
        f"at {temps} K, {len(plan.seeds)} seed(s) per temperature, {plan.n_equil * plan.dt_fs / 1000:g} ps "
        f"equilibration + {plan.n_prod * plan.dt_fs / 1000:g} ps production with {plan.dt_fs:g} fs "
        f"steps; {ctx.md_done} of {ctx.md_runs} runs finished, on {ctx.n_ranks} MPI rank(s) "
        f"(one rank per run). NEB of the knock-off and direct hops with both "
        f"models in the {neb_cell_text(plan)} cell, {plan.neb_images} images. "
        f"Written {ctx.date_utc}; wall time of this invocation {ctx.wall_s / 60:.1f} min"
        f"{' (resumed: finished runs and NEBs were reused)' if ctx.resumed else ''}.", "",
        "## Read this first", "",
        *[f"- {w}" for w in warnings_text(plan, ctx, nebs, ana)], "",
        "## Results", "",
        *_md_table(TABLE_HEADER, rows), "",
        "Ea: weighted Arrhenius fit of the Li tracer D over the temperatures (±: half the 95% "
        "interval). Ea from hop rate: weighted Arrhenius fit of the interstitial's jump rate "
        "(knock-off plus direct events per ps, seeds summed, Poisson errors) from the hop "
        "analysis of the same MD; for a single defect D is proportional to that rate, which "
        "is counted directly and so is far better determined than the tracer D in short runs. "
        "D(300 K): the D fit extrapolated, with its 95% interval. D comes from the "
        "all-origin MSD fitted by generalised least squares with a modelled covariance, seeds "
        "combined (docs/analysis.md).",
        f"NEB: LAMMPS {'CI-NEB' if plan.neb_climb_steps else 'NEB (no climbing image)'} "
        f"through pair_style mlip/torch, one image per MPI partition, end points "
        f"{'relaxed at fixed cell' if plan.neb_relax else 'not relaxed'}, force tolerance "
        f"{plan.neb_ftol_eV_A:g} eV/Å, step budget {plan.neb_steps} + {plan.neb_climb_steps} "
        f"(docs/neb.md). The CHGNet reference barriers come from ASE CI-NEB with CHGNet itself in "
        f"the 3x3x3 cell at a = 4.03 Å (inputs/neb/chgnet_reference.json, fmax 0.02 eV/Å); "
        f"compare barriers only between the same cell sizes.",
        "Knock-off fraction: interstitialcy (knock-off) events / (interstitialcy + direct "
        "interstitial events) found by the hop analysis of the MD, all temperatures and seeds.",
        f"µs/atom/step: core time per atom and MD step, sum(Loop time x ranks) / sum(steps x "
        f"atoms) over the LAMMPS logs of the model's runs ({plan.md_atoms} atoms, 1 rank per run, "
        f"up to {ctx.n_ranks} runs at once). The machine's load average was "
        f"{ctx.load_start[0]:.1f} at the start and {ctx.load_end[0]:.1f} at the end; on a loaded "
        f"machine the cost is overstated.",
        "For orientation only: the published LiF study (models labelled by DFT) reports "
        "Ea = 0.22 eV (MACE-MPA-0), 0.20 eV (MACE fine-tuned on 300 configurations) and "
        "0.24 eV (DeePMD trained on more than 40,000 configurations), and the knock-off "
        "mechanism. Different labels and cells: not a target for these CHGNet-fitted models.", "",
        "## Diffusion per temperature", "",
        *_md_table(("model", "T (K)", "D (cm²/s)", "95% CI", "seeds", "fit window (ps)",
                    "diffusive", "hops: knock-off / direct / other"), per_temperature_rows(ana)),
        "",
        "## Figures", "",
    ]
    for fig_line in _figure_lines(figs, out):
        lines += [fig_line, ""]
    lines += [
        "## Files and how to rerun", "",
        f"- MD sweep: sweep/ (sweep.toml is its definition; rerun or extend with "
        f"mpirun -np {ctx.n_ranks} ionmd sweep {out / 'sweep.toml'} --resume); per-run analysis "
        f"report: ionmd report {out / 'sweep'}.",
        "- NEBs: neb/<model>_<case>/ (neb.json, neb.png, LAMMPS logs).",
        "- Machine-readable summary: demo.json. Progress log of the sweep: logs/sweep.log.",
        "- Rerunning ionmd demo with the same --out resumes: finished runs and NEBs are kept.",
        "- Stage wall times of this invocation (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in ctx.stage_wall_s.items()),
        "",
    ]
    if ctx.history:
        lines += ["Invocations of ionmd demo in this directory (logs/invocations.jsonl):", "",
                  *_md_table(("started (UTC)", "wall (min)", "MD runs done before", "MPI ranks",
                              "load average start / end"),
                             [[h["started_utc"], f"{h['wall_s'] / 60:.1f}",
                               str(h["md_done_before"]), str(h["n_ranks"]),
                               f"{h['load_start']:.1f} / {h['load_end']:.1f}"]
                              for h in ctx.history]), ""]
    if ana.notes:
        lines += ["## Analysis notes", "", *[f"- {n}" for n in ana.notes], ""]
    text = "\n".join(lines)
    md_path = out / "report.md"
    md_path.write_text(text + "\n")
    html_path = out / "report.html"
    html_path.write_text(markdown_to_html(embed_images(text, out),
                                          title=f"ionmd demo ({plan.mode} mode)"))
    _write_json(out / "demo.json", plan, ana, nebs, reference, ctx, rows)
    return DemoReport(md_path, html_path, list(TABLE_HEADER), rows)


def _write_json(path: Path, plan: DemoPlan, ana: DemoAnalysis, nebs: list[NEBOutcome],
                reference: dict[str, ReferenceBarrier], ctx: RunContext,
                rows: list[list[str]]) -> None:
    sw = ana.sweep
    data = {
        "plan": plan.to_dict(),
        "table": {"header": list(TABLE_HEADER), "rows": rows},
        "models": {
            m: {
                "arrhenius": sw.arrhenius[m].to_dict() if sw and m in sw.arrhenius else None,
                "hop_rate_arrhenius": (ana.hop_arrhenius[m].to_dict()
                                       if m in ana.hop_arrhenius else None),
                "diffusion": ([sw.diffusion[m][T].to_dict() for T in sorted(sw.diffusion[m])]
                              if sw and m in sw.diffusion else []),
                "hops": vars(ana.hops[m]) if m in ana.hops else None,
                "knockoff_fraction": ana.hops[m].knockoff_fraction if m in ana.hops else None,
                "cost": ana.costs[m].to_dict() if m in ana.costs else None,
                "neb": {o.case: (o.result.to_dict() if o.result else {"error": o.error})
                        for o in nebs if o.model == m},
            }
            for m in plan.models
        },
        "chgnet_reference": {c: vars(r) for c, r in reference.items()},
        "run": vars(ctx),
        "notes": ana.notes,
        "neb_cases": list(NEB_CASES),
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
