"""Training and held-out sets of an active-learning run.

Iteration 0's training set is the initial labelled frames (all, or
``initial_count`` drawn at random). Iteration *i* > 0 trains on iteration
*i-1*'s set plus the frames labelled in iteration *i-1*. Each set is written in
full to ``iter.NNN/data/train.extxyz``, with the labeller's isolated-atom
energies beside it (``train.extxyz.e0.json``) for MACE's E0s.

Held-out frames: ``data.test`` (optionally its first ``test_count``), or, when
only ``test_count`` is given, that many frames of the initial file that were not
drawn for training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import write

from ionmd.models.fit import load_labelled
from ionmd.models.label import e0_path, load_e0


def split_initial(data: dict[str, Any]) -> tuple[list[Atoms], list[Atoms]]:
    """Return (initial training frames, held-out frames) from the ``[data]`` table."""
    frames = load_labelled(data["initial"])
    order = np.random.default_rng(int(data["initial_seed"])).permutation(len(frames))
    n_init = len(frames) if data["initial_count"] is None else min(data["initial_count"], len(frames))
    train = [frames[i] for i in sorted(order[:n_init])]
    if data["test"] is not None:
        test = load_labelled(data["test"])
        if data["test_count"] is not None:
            test = test[: data["test_count"]]
    elif data["test_count"] is not None:
        rest = order[n_init:]
        test = [frames[i] for i in sorted(rest[: data["test_count"]])]
    else:
        test = []
    return train, test


def write_set(frames: list[Atoms], path: Path, e0_eV: dict[str, float], labeller: str) -> Path:
    """Write labelled ``frames`` to ``path`` (extxyz) with its ``.e0.json`` sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp, frames, format="extxyz")
    tmp.replace(path)
    if e0_eV:
        e0_path(path).write_text(json.dumps({"labeller": labeller, "e0_eV": e0_eV}, indent=2) + "\n")
    return path


def initial_e0(data: dict[str, Any]) -> dict[str, float]:
    """Return the isolated-atom energies stored beside the initial data file, or ``{}``."""
    return load_e0(data["initial"])


def extend_set(previous: Path, labelled: Path | None, out: Path, labeller: str) -> int:
    """Write ``previous`` + ``labelled`` frames to ``out``; return the number of frames.

    The isolated-atom energies of ``labelled``'s sidecar (the labeller's own)
    take precedence over those of ``previous``.
    """
    frames = load_labelled(previous)
    e0 = load_e0(previous)
    if labelled is not None and labelled.is_file():
        frames += load_labelled(labelled)
        e0.update(load_e0(labelled))
    write_set(frames, out, e0, labeller)
    return len(frames)
