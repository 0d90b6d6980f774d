"""The active-learning loop: iterations of data, train, evaluate, explore, select, label.

State lives in ``<work_dir>/learn_state.json`` (:mod:`ionmd.learn.state`) and
in ``iter.NNN/`` directories::

    iter.NNN/data/train.extxyz           training set of this iteration (+ .e0.json)
    iter.NNN/train/member{k}/...         mace_run_train / dp work directories
    iter.NNN/train/member{k}.pt          exported committee members
    iter.NNN/evaluate.json               held-out RMSE against the labeller
    iter.NNN/explore/sweep.toml, sweep.json, runs/...   (dump + model_devi.out per run)
    iter.NNN/select/frames.json          every explored frame: run, step, deviation, class
    iter.NNN/select/selected.extxyz      frames picked for labelling
    iter.NNN/label/labelled.extxyz       their labels (+ .e0.json)

Stop: when the accurate fraction reaches ``stop.accurate_fraction`` (no labels
are asked for), when there is no candidate left to label, or after
``stop.max_iterations`` trained committees (the last one is explored and
classified but not labelled: its labels would train nothing).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase.io import read, write

from ionmd.errors import InputError, IonmdError
from ionmd.learn.config import LearnConfig
from ionmd.learn.dataset import extend_set, initial_e0, split_initial, write_set
from ionmd.learn.explore import collect_frames, deviation_summary, run_exploration
from ionmd.learn.select import CLASSES, class_counts, classify, select_frames
from ionmd.learn.state import (
    STEPS,
    IterationRecord,
    LearnState,
    load_state,
    now,
    save_state,
    state_path,
    write_json_atomic,
)
from ionmd.learn.train import heldout_errors, member_paths, train_committee

#: ``hook(iteration, step)`` is called before every step (tests use it to simulate a kill).
StepHook = Callable[[int, str], None]


class LearnStepFailed(IonmdError):
    """A step of an iteration failed; the state records it and ``--resume`` retries it."""


class LearnInterrupted(BaseException):
    """SIGTERM reached ``ionmd learn``: the running step is recorded as failed, then it stops."""


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise LearnInterrupted(f"received signal {signum}")


def _test_frames(work_dir: Path) -> list:
    """Return the held-out frames (``work_dir/heldout.extxyz``, written by the data step)."""
    path = work_dir / "heldout.extxyz"
    if path.is_file():
        return read(path, index=":")
    return []


def _step_data(config: LearnConfig, state: LearnState, it: IterationRecord, work: Path) -> None:
    out = work / it.dir / "data" / "train.extxyz"
    labeller = config.labeller["calculator"]
    if it.index == 0:
        train, test = split_initial(config.data)
        e0 = initial_e0(config.data)
        write_set(train, out, e0, labeller)
        if test:
            write_set(test, config.work_dir / "heldout.extxyz", {}, labeller)
        it.stats["n_train_frames"] = len(train)
        it.stats["n_heldout_frames"] = len(test)
        return
    prev = state.iterations[it.index - 1]
    prev_dir = work / prev.dir
    labelled = prev_dir / "label" / "labelled.extxyz"
    it.stats["n_train_frames"] = extend_set(prev_dir / "data" / "train.extxyz", labelled, out,
                                            labeller)


def _step_train(config: LearnConfig, state: LearnState, it: IterationRecord, work: Path) -> None:
    data = work / it.dir / "data" / "train.extxyz"
    previous = work / state.iterations[it.index - 1].dir / "train" if it.index > 0 else None
    models = train_committee(data, work / it.dir / "train", config.model, previous)
    it.stats["models"] = [str(p.relative_to(work)) for p in models]


def _step_evaluate(config: LearnConfig, state: LearnState, it: IterationRecord, work: Path
                   ) -> None:
    errors = heldout_errors(work / it.dir / "train", config.model, _test_frames(work))
    write_json_atomic(work / it.dir / "evaluate.json", errors)
    it.stats.update(errors)


def _step_explore(config: LearnConfig, state: LearnState, it: IterationRecord, work: Path
                  ) -> None:
    models = [member_paths(work / it.dir / "train", k, config.model["family"])[1]
              for k in range(int(config.model["committee"]))]
    summary = run_exploration(config.explore, models, work / it.dir / "explore")
    it.stats["explore"] = summary


def _step_select(config: LearnConfig, state: LearnState, it: IterationRecord, work: Path
                 ) -> None:
    sel = config.select
    frames, structures = collect_frames(work / it.dir / "explore")
    if not frames:
        raise IonmdError(f"exploration wrote no frame with a deviation line in "
                         f"{work / it.dir / 'explore'} (see its runs' stdout.txt)")
    devi = [f.max_devi_f_eV_A for f in frames]
    classes = classify(devi, sel["lo_eV_A"], sel["hi_eV_A"])
    picked = select_frames(devi, [f.time_ps for f in frames], [f.run for f in frames],
                           sel["lo_eV_A"], sel["hi_eV_A"], sel["budget"], sel["method"],
                           sel["seed"] + it.index)
    out = work / it.dir / "select"
    out.mkdir(parents=True, exist_ok=True)
    chosen = set(picked)
    records = [dict(f.to_dict(), **{"class": c, "selected": i in chosen})
               for i, (f, c) in enumerate(zip(frames, classes, strict=True))]
    write_json_atomic(out / "frames.json", {"lo_eV_A": sel["lo_eV_A"], "hi_eV_A": sel["hi_eV_A"],
                                            "frames": records})
    chosen_atoms = []
    for i in picked:
        atoms = structures[i]
        atoms.info.update({"run": frames[i].run, "step": frames[i].step,
                           "max_devi_f_eV_A": frames[i].max_devi_f_eV_A,
                           "iteration": it.index})
        chosen_atoms.append(atoms)
    tmp = out / "selected.extxyz.tmp"
    write(tmp, chosen_atoms, format="extxyz")
    tmp.replace(out / "selected.extxyz")
    counts = class_counts(classes)
    it.stats["n_frames"] = len(frames)
    for c in CLASSES:
        it.stats[f"n_{c}"] = counts[c]
        it.stats[f"{c}_fraction"] = counts[c] / len(frames)
    it.stats["n_selected"] = len(picked)
    it.stats.update(deviation_summary(frames))


def _step_label(config: LearnConfig, state: LearnState, it: IterationRecord, work: Path) -> None:
    from ionmd.models.label import label_frames

    src = work / it.dir / "select" / "selected.extxyz"
    result = label_frames(src, work / it.dir / "label" / "labelled.extxyz",
                          config.labeller["calculator"], elements=config.data["elements"])
    it.stats["n_labelled"] = result.n_frames


STEP_FUNCS = {"data": _step_data, "train": _step_train, "evaluate": _step_evaluate,
              "explore": _step_explore, "select": _step_select, "label": _step_label}


def _stop_decision(config: LearnConfig, it: IterationRecord) -> str | None:
    """Return why the run stops after this iteration's selection, or None to label and go on."""
    frac = it.stats.get("accurate_fraction", 0.0)
    target = config.stop["accurate_fraction"]
    if frac >= target:
        return "converged"
    if it.index + 1 >= config.stop["max_iterations"]:
        return "max_iterations"
    if it.stats.get("n_selected", 0) == 0:
        return "no_candidates"
    return None


def _reason_text(config: LearnConfig, it: IterationRecord, status: str) -> str:
    frac = 100 * it.stats.get("accurate_fraction", 0.0)
    target = 100 * config.stop["accurate_fraction"]
    return {
        "converged": f"accurate fraction {frac:.1f}% >= target {target:.1f}% at iteration {it.index}",
        "max_iterations": f"reached max_iterations = {config.stop['max_iterations']} with "
                          f"{frac:.1f}% accurate (target {target:.1f}%)",
        "no_candidates": f"no candidate frames to label at iteration {it.index} "
                         f"({frac:.1f}% accurate, {100 * it.stats.get('failed_fraction', 0):.1f}% "
                         "failed); widen [select] lo/hi or change the exploration",
    }[status]


def _run_step(config: LearnConfig, state: LearnState, it: IterationRecord, step: str,
              hook: StepHook | None, printer: Callable[[str], None]) -> None:
    rec = it.steps[step]
    work = config.work_dir
    rec.status, rec.started_at, rec.finished_at, rec.error = "running", now(), None, None
    rec.attempts += 1
    save_state(work, state)
    printer(f"[learn] iteration {it.index}: {step} ...")
    t0 = time.time()
    try:
        if hook is not None:
            hook(it.index, step)
        STEP_FUNCS[step](config, state, it, work)
    except BaseException as exc:
        rec.status = "failed"
        rec.error = f"{type(exc).__name__}: {exc}"
        rec.finished_at = now()
        rec.wall_s = round(rec.wall_s + time.time() - t0, 3)
        save_state(work, state)
        if isinstance(exc, Exception) and not isinstance(exc, LearnStepFailed):
            raise LearnStepFailed(
                f"iteration {it.index}, step '{step}' failed: {rec.error}; the finished steps are "
                f"kept in {state_path(work)}: fix the cause and rerun with --resume") from exc
        raise
    rec.status = "done"
    rec.finished_at = now()
    rec.wall_s = round(rec.wall_s + time.time() - t0, 3)
    save_state(work, state)


def open_state(config: LearnConfig, resume: bool, printer: Callable[[str], None]) -> LearnState:
    """Create the learning directory's state, or reopen it with ``resume``."""
    path = state_path(config.work_dir)
    if path.is_file():
        if not resume:
            raise InputError(f"'{config.work_dir}' already holds a learning run ({path.name}): "
                             "rerun with --resume (or choose another work_dir)")
        state = load_state(config.work_dir)
        if state.config_digest != config.digest:
            printer(f"[learn] warning: {config.path} changed since the run began; "
                    "finished steps are kept, the new settings apply to the steps left")
            state.config_digest = config.digest
        return state
    config.work_dir.mkdir(parents=True, exist_ok=True)
    state = LearnState(name=config.name, config=str(config.path), config_digest=config.digest)
    save_state(config.work_dir, state)
    return state


def run_learning(config: LearnConfig, resume: bool = False, hook: StepHook | None = None,
                 printer: Callable[[str], None] | None = None) -> LearnState:
    """Run (or resume) active learning as configured; return the final state.

    Parameters
    ----------
    config
        From :func:`ionmd.learn.config.load_learn_config`.
    resume
        Continue a run whose state file exists: finished steps are skipped, a
        failed or interrupted step is redone (itself resuming where it can).
    hook
        Called as ``hook(iteration, step)`` before each step (for tests).
    printer
        Progress output (default: ``print``).

    Raises
    ------
    LearnStepFailed
        When a step fails; the state file records the step and its error.
    """
    printer = printer or (lambda text: print(text, flush=True))
    if threading.current_thread() is not threading.main_thread():
        return _learn(config, resume, hook, printer)
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _learn(config, resume, hook, printer)
    finally:
        signal.signal(signal.SIGTERM, old)


def _learn(config: LearnConfig, resume: bool, hook: StepHook | None,
           printer: Callable[[str], None]) -> LearnState:
    state = open_state(config, resume, printer)
    work = config.work_dir
    if state.status != "running":
        printer(f"[learn] finished earlier: {state.stop_reason}")
        return state
    index = 0
    while True:
        it = state.iteration(index)
        (work / it.dir).mkdir(parents=True, exist_ok=True)
        for step in STEPS:
            if it.steps[step].status in ("done", "skipped"):
                continue
            if step == "label":
                status = _stop_decision(config, it)
                if status is not None:
                    it.steps["label"].status = "skipped"
                    state.status = status
                    state.stop_reason = _reason_text(config, it, status)
                    save_state(work, state)
                    break
            _run_step(config, state, it, step, hook, printer)
        _print_iteration(it, printer)
        if state.status != "running":
            break
        index += 1
    from ionmd.learn.report import write_learn_report

    write_learn_report(work)
    printer(f"[learn] stopped: {state.stop_reason}")
    return state


def _print_iteration(it: IterationRecord, printer: Callable[[str], None]) -> None:
    s: dict[str, Any] = it.stats
    if "n_frames" not in s:
        return
    printer(f"[learn] iteration {it.index}: {s.get('n_train_frames')} training frames, "
            f"{s['n_frames']} explored: {100 * s['accurate_fraction']:.1f}% accurate, "
            f"{100 * s['candidate_fraction']:.1f}% candidate, {100 * s['failed_fraction']:.1f}% "
            f"failed; {s.get('n_labelled', 0)} labelled; held-out force RMSE "
            f"{s.get('test_force_rmse_meV_A', float('nan')):.1f} meV/Å")

