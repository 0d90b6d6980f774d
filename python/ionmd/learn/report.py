"""Report of an active-learning directory: a per-iteration table (Markdown, CSV) and a PNG.

Columns: iteration, training frames, explored frames, accurate / candidate /
failed fractions, frames labelled, held-out energy RMSE (meV/atom) and force
RMSE (meV/Å) against the labeller (committee mean), wall time (s). When
``baseline.json`` exists (:mod:`ionmd.learn.baseline`), the random-selection
comparison is added.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ionmd.learn.state import load_state

COLUMNS = ("iteration", "n_train_frames", "n_frames", "accurate_fraction", "candidate_fraction",
           "failed_fraction", "n_labelled", "test_energy_rmse_meV_atom", "test_force_rmse_meV_A",
           "wall_s")
HEADERS = ("iter", "train frames", "explored", "accurate", "candidate", "failed", "labelled",
           "E RMSE (meV/atom)", "F RMSE (meV/Å)", "wall (s)")


def report_rows(work_dir: Path | str) -> list[dict[str, Any]]:
    """Return one row per iteration with the report's columns (None where not yet known)."""
    state = load_state(work_dir)
    rows = []
    for it in state.iterations:
        s = it.stats
        row = {c: s.get(c) for c in COLUMNS}
        row["iteration"] = it.index
        row["n_labelled"] = s.get("n_labelled", 0)
        row["wall_s"] = round(it.wall_s, 1)
        rows.append(row)
    return rows


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key.endswith("_fraction"):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Return the rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(c, row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def plot_learning(rows: list[dict[str, Any]], path: Path, baseline: dict | None = None) -> Path:
    """Write the PNG: class fractions per iteration, and held-out force RMSE vs training frames."""
    from ionmd.analysis.plots import pyplot, save_png

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    its = [r["iteration"] for r in rows if r["accurate_fraction"] is not None]
    for key, colour in (("accurate", "tab:green"), ("candidate", "tab:orange"),
                        ("failed", "tab:red")):
        ax1.plot(its, [100 * r[f"{key}_fraction"] for r in rows
                       if r["accurate_fraction"] is not None], "o-", color=colour, label=key)
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("explored frames (%)")
    ax1.set_ylim(-2, 102)
    ax1.legend()
    ax1.set_title("committee force deviation classes")
    pts = [(r["n_train_frames"], r["test_force_rmse_meV_A"]) for r in rows
           if r["test_force_rmse_meV_A"] is not None and r["n_train_frames"] is not None]
    if pts:
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label="active learning (committee mean)")
    if baseline:
        for key, marker, label in (("active", "s", "AL set, retrained"),
                                   ("random", "x", "random selection, same budget")):
            entry = baseline.get(key)
            if entry:
                ax2.plot([entry["n_train_frames"]], [entry["test_force_rmse_meV_A"]], marker,
                         markersize=9, label=label)
    ax2.set_xlabel("labelled training frames")
    ax2.set_ylabel("held-out force RMSE (meV/Å)")
    ax2.set_title("error against the labeller")
    ax2.legend(fontsize=8)
    return save_png(fig, path)


def write_learn_report(work_dir: Path | str) -> tuple[Path, Path]:
    """Write ``learn_report.md``, ``learn_report.csv`` and ``learn_report.png``; return (md, png)."""
    work = Path(work_dir)
    state = load_state(work)
    rows = report_rows(work)
    baseline = None
    if (work / "baseline.json").is_file():
        baseline = json.loads((work / "baseline.json").read_text())
    with open(work / "learn_report.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    png = plot_learning(rows, work / "learn_report.png", baseline)
    text = [f"# Active learning: {state.name}", "",
            f"Status: **{state.status}**" + (f" ({state.stop_reason})" if state.stop_reason else ""),
            "", markdown_table(rows), "",
            "Fractions: committee max force deviation below lo (accurate), between lo and hi "
            "(candidate), above hi (failed). RMSE: committee mean on the held-out frames against "
            "the labeller.", ""]
    if baseline:
        text += ["## Random selection with the same label budget", "",
                 "| selection | training frames | E RMSE (meV/atom) | F RMSE (meV/Å) |",
                 "|---|---|---|---|"]
        for key in ("active", "random"):
            entry = baseline.get(key)
            if entry:
                text.append(f"| {key} | {entry['n_train_frames']} | "
                            f"{entry['test_energy_rmse_meV_atom']:.1f} | "
                            f"{entry['test_force_rmse_meV_A']:.1f} |")
        text += ["", baseline.get("verdict", ""), ""]
    text.append(f"![learning curve]({png.name})")
    md = work / "learn_report.md"
    md.write_text("\n".join(text) + "\n")
    return md, png
