"""Fit MACE (``mace_run_train``) or DeePMD (``dp --pt train``) models to labelled frames.

Both wrappers share one flow:

1. read the labelled extended XYZ (``ionmd label`` output: ASE ``energy``/``forces``);
2. split it at random (seeded) into train / validation / test sets;
3. train ``committee`` members with seeds ``seed, seed+1, ...``;
4. evaluate every member on the held-out test split, independently of the
   trainer's own logs, and write ``fit.json`` (:class:`FitResult`).

E0s (MACE): the labeller's isolated-atom energies from ``DATA.e0.json`` when
present (``ionmd label`` writes it); else, if the frames have enough distinct
compositions to solve for them, mace's least-squares ``average``; else fixed
E0s of 0 eV per element (the ``ScaleShiftMACE`` shift then absorbs the cohesive
energy). The choice is recorded in ``fit.json``.
DeePMD fits its own per-type energy bias and needs no E0s.

DeePMD runs in a separate environment (see :mod:`ionmd.models.dpenv`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.io import write

from ionmd.errors import InputError, IonmdError
from ionmd.jsonfile import write_json_atomic
from ionmd.models.deepmd_data import write_deepmd_systems
from ionmd.models.label import load_e0, read_frames

# Small-data defaults. MACE: the scalar-feature models are the fast ones on a CPU.
MACE_SIZES: dict[str, dict[str, str]] = {
    "tiny": {
        "hidden_irreps": "8x0e",
        "r_max": "4.0",
        "max_ell": "1",
        "correlation": "2",
        "num_radial_basis": "6",
        "radial_MLP": "[16, 16]",
        "MLP_irreps": "8x0e",
        "max_num_epochs": "2",
    },
    "small": {
        "hidden_irreps": "16x0e",
        "r_max": "4.0",
        "max_ell": "2",
        "correlation": "2",
        "num_radial_basis": "8",
        "radial_MLP": "[32, 32]",
        "MLP_irreps": "16x0e",
        "max_num_epochs": "200",
    },
    "medium": {
        "hidden_irreps": "32x0e+32x1o",
        "r_max": "5.0",
        "max_ell": "3",
        "correlation": "3",
        "num_radial_basis": "8",
        "radial_MLP": "[64, 64, 64]",
        "MLP_irreps": "16x0e",
        "max_num_epochs": "300",
    },
    # The cheap one per step: l <= 1 spherical harmonics on the edges (4 components
    # instead of 9 for max_ell 2), 6 radial functions, scalar features throughout.
    "fast": {
        "hidden_irreps": "16x0e",
        "r_max": "4.0",
        "max_ell": "1",
        "correlation": "2",
        "num_radial_basis": "6",
        "num_interactions": "2",
        "radial_MLP": "[32, 32]",
        "MLP_irreps": "16x0e",
        "max_num_epochs": "60",
    },
}
# DeePMD se_e2_a. "sel" is the floor of the per-type maximum neighbour count:
# fit_deepmd derives sel from the data (derive_sel) and never goes below it.
DEEPMD_SIZES: dict[str, dict] = {
    "tiny": {
        "neuron": [4, 8],
        "axis_neuron": 4,
        "fitting": [8, 8],
        "rcut": 5.0,
        "sel": 40,
        "steps": 200,
    },
    "small": {
        "neuron": [16, 32],
        "axis_neuron": 8,
        "fitting": [32, 32, 32],
        "rcut": 5.0,
        "sel": 40,
        "steps": 20000,
    },
    "medium": {
        "neuron": [25, 50, 100],
        "axis_neuron": 16,
        "fitting": [240, 240, 240],
        "rcut": 6.0,
        "sel": 64,
        "steps": 200000,
    },
}


@dataclass
class MemberResult:
    """One committee member: its model files and held-out test errors."""

    seed: int
    model: str
    deployable: str
    test_energy_rmse_meV_atom: float
    test_force_rmse_meV_A: float


@dataclass
class FitResult:
    """Outcome of ``ionmd fit`` (written as ``fit.json`` in the output directory).

    The headline errors are those of member 0 on the held-out test split:
    energy RMSE per atom (meV/atom) and force-component RMSE (meV/Å).
    """

    family: str
    data: str
    out_dir: str
    size: str
    n_train: int
    n_valid: int
    n_test: int
    species: list[str]
    e0_eV: dict[str, float]
    e0_source: str
    test_energy_rmse_meV_atom: float
    test_force_rmse_meV_A: float
    wall_s: float
    members: list[MemberResult] = field(default_factory=list)
    sel: dict | None = None  # DeePMD only: the chosen sel and how (see fit_deepmd)
    init_model: list[str] | None = None  # DeePMD only: checkpoints continued from, per member
    finetune: dict | None = None  # MACE --foundation only: mode, heads, replay data

    def to_json(self) -> str:
        """Return the result as a JSON string."""
        return json.dumps(asdict(self), indent=2)

    def save_json(self, path: Path | str) -> None:
        """Write the result to ``path`` (``fit.json``) atomically: a crash leaves the old file or the new one."""
        write_json_atomic(path, asdict(self))


def load_labelled(path: Path | str) -> list[Atoms]:
    """Read labelled frames; refuse frames without energy or forces, naming them."""
    frames = read_frames(path)
    for i, atoms in enumerate(frames):
        res = atoms.calc.results if atoms.calc is not None else {}
        missing = [k for k in ("energy", "forces") if k not in res]
        if missing:
            raise InputError(
                f"{path}: frame {i} has no {' or '.join(missing)} label (run `ionmd label` first)"
            )
    return frames


def split_indices(
    n: int, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return shuffled (train, valid, test) index arrays; valid and test get at least one frame each.

    Raises
    ------
    InputError
        If fewer than 3 frames are given.
    """
    if n < 3:
        raise InputError(f"need at least 3 labelled frames to split into train/valid/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(test_fraction * n))
    n_valid = max(1, round(valid_fraction * n))
    return order[n_test + n_valid :], order[n_test : n_test + n_valid], order[:n_test]


def rmse_metrics(
    ref_E: Sequence[float],
    pred_E: Sequence[float],
    natoms: Sequence[int],
    ref_F: np.ndarray,
    pred_F: np.ndarray,
) -> tuple[float, float]:
    """Return (energy RMSE in meV/atom, force-component RMSE in meV/Å)."""
    n = np.asarray(natoms, dtype=float)
    de = (np.asarray(pred_E) - np.asarray(ref_E)) / n
    df = np.asarray(pred_F) - np.asarray(ref_F)
    return float(1000.0 * np.sqrt(np.mean(de**2))), float(1000.0 * np.sqrt(np.mean(df**2)))


def _species(frames: Sequence[Atoms]) -> list[str]:
    return sorted(
        {s for a in frames for s in a.get_chemical_symbols()}, key=lambda s: atomic_numbers[s]
    )


def _choose_e0(
    data: Path, frames: Sequence[Atoms], species: list[str]
) -> tuple[dict[str, float], str]:
    e0 = load_e0(data)
    if all(s in e0 for s in species):
        return {s: e0[s] for s in species}, "labeller isolated atoms"
    comp = np.array([[a.get_chemical_symbols().count(s) for s in species] for a in frames])
    if np.linalg.matrix_rank(comp) == len(species):
        return {}, "average"
    return {s: 0.0 for s in species}, "fixed 0 eV (no isolated-atom energies, single composition)"


def _mace_xyz(frames: Sequence[Atoms], path: Path) -> None:
    out = []
    for atoms in frames:
        a = Atoms(
            atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
        )
        a.info["REF_energy"] = float(atoms.calc.results["energy"])
        if "config_type" in atoms.info:  # mace weighs frames by type (--config_type_weights)
            a.info["config_type"] = str(atoms.info["config_type"])
        a.arrays["REF_forces"] = np.asarray(atoms.calc.results["forces"], dtype=float)
        out.append(a)
    write(path, out, format="extxyz")


def _mace_predict(
    model: Path, frames: Sequence[Atoms], dtype: str
) -> tuple[list[float], np.ndarray]:
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=str(model), device="cpu", default_dtype=dtype)
    energies, forces = [], []
    for atoms in frames:
        a = atoms.copy()
        a.calc = calc
        energies.append(float(a.get_potential_energy()))
        forces.append(np.asarray(a.get_forces()))
    return energies, np.concatenate(forces)


def fit_mace(
    data: Path | str,
    out_dir: Path | str,
    *,
    size: str = "small",
    foundation: Path | str | None = None,
    committee: int = 1,
    seed: int = 0,
    epochs: int | None = None,
    dtype: str = "float64",
    batch_size: int = 5,
    n_train: int | None = None,
    pair_repulsion: bool = True,
    config_type_weights: dict[str, float] | None = None,
    stage_two: bool = True,
    multihead: bool = True,
    replay_data: Path | str | None = None,
    extra_args: Sequence[str] = (),
) -> FitResult:
    """Fit a MACE model (or a committee) with ``mace_run_train``.

    Parameters
    ----------
    data
        Labelled extended XYZ (energies in eV, forces in eV/Å).
    out_dir
        Output directory; member *k* trains in ``out_dir/member{k}`` and its
        model is ``out_dir/member{k}/mace.model`` (mace checkpoint), or
        ``mace_stagetwo.model`` after a second stage (``stage_two``); ``fit.json``
        names the one evaluated.
    size
        ``tiny``, ``small``, ``medium`` or ``fast`` (see ``MACE_SIZES``; ``fast``
        is ``small`` with max_ell 1 and 6 radial functions, the cheaper step);
        ignored for the architecture when ``foundation`` is given.
    foundation
        A mace-torch checkpoint to fine-tune from (mace's ``--foundation_model``).
    committee
        Number of members (seeds ``seed .. seed+committee-1``).
    epochs
        Override the size's default number of epochs.
    dtype
        ``float32`` or ``float64`` training precision.
    n_train
        Use at most this many training frames (validation and test splits are
        fractions of all frames, so more data gives a larger test set).
    pair_repulsion
        Add mace's ZBL screened-nuclear repulsion (``--pair_repulsion``) to the
        model (default). Small training sets rarely hold pairs closer than about
        1.7 Å, and without a repulsive core a fitted model can admit unphysical
        short contacts in long MD (a Li-Li "dimer" at 0.5-1 Å was seen with a
        300-frame LiF model without it). Not applied when fine-tuning a
        ``foundation`` model, whose architecture is kept as it is.
    config_type_weights
        Loss weight per ``config_type`` (the frames' ``info["config_type"]``; frames
        without one are ``Default``, weight 1), e.g. ``{"short_contact": 0.3}`` so that
        a few high-force short-contact frames teach the repulsive wall without
        dominating the force loss.
    stage_two
        mace's second stage (``--stage_two``) for the last quarter of the epochs:
        energy weight 1000, forces 100, learning rate 1e-3. Without it the small
        energy weight of the first stage leaves per-composition energy offsets
        (about 15-20 meV/atom between the interstitial and vacancy LiF cells were
        measured); skipped when there are fewer than 4 epochs.
    multihead
        With ``foundation``: mace's multi-head fine-tuning (default). The model
        gets two heads, ``pt_head`` (the foundation's, kept on the ``replay_data``)
        and ``Default`` (the new data); it keeps every element of the foundation.
        ``False``: plain fine-tuning of the foundation's weights on the new data
        alone (one head). See :mod:`ionmd.models.foundation`.
    replay_data
        Multi-head fine-tuning: labelled frames (ASE ``energy``/``forces``, e.g. a
        subset of the foundation's training set) that keep the foundation head
        from forgetting (mace's ``--pt_train_file``). Required: ionmd never lets
        mace download its Materials Project replay set.
    """
    t0 = time.time()
    data = Path(data)
    out = Path(out_dir).resolve()
    if size not in MACE_SIZES:
        raise InputError(f"--size {size!r}: choose one of {', '.join(MACE_SIZES)}")
    if foundation is not None and not Path(foundation).is_file():
        raise InputError(f"--foundation {foundation}: no such file")
    if foundation is None and replay_data is not None:
        raise InputError("--replay-data applies to fine-tuning only (give --foundation)")
    mh = foundation is not None and multihead
    if shutil.which("mace_run_train") is None:
        raise IonmdError("mace_run_train not found on PATH; `pip install mace-torch`")
    frames = load_labelled(data)
    species = _species(frames)
    if mh:
        from ionmd.models.foundation import check_multihead_inputs

        check_multihead_inputs(foundation, replay_data, species)
    tr, va, te = split_indices(len(frames), seed=seed)
    tr = tr[:n_train] if n_train is not None else tr
    out.mkdir(parents=True, exist_ok=True)
    for name, idx in (("train", tr), ("valid", va), ("test", te)):
        _mace_xyz([frames[i] for i in idx], out / f"{name}.xyz")
    (out / "split.json").write_text(
        json.dumps({"train": tr.tolist(), "valid": va.tolist(), "test": te.tolist()})
    )
    e0, e0_source = _choose_e0(data, frames, species)
    e0_arg = (
        "average" if e0_source == "average" else str({atomic_numbers[s]: v for s, v in e0.items()})
    )
    replay = None
    if mh:
        from ionmd.models.foundation import foundation_e0s, write_replay

        replay = write_replay(replay_data, out / "replay.xyz")
        if e0_source != "labeller isolated atoms":  # mace refuses "average" with several heads
            e0, e0_source, e0_arg = foundation_e0s(foundation, species), "foundation", "foundation"
    opts = dict(MACE_SIZES[size])
    if epochs is not None:
        opts["max_num_epochs"] = str(epochs)
    test = [frames[i] for i in te]
    members = []
    for k in range(committee):
        wd = out / f"member{k}"
        cmd = [
            "mace_run_train",
            "--name",
            "mace",
            "--work_dir",
            str(wd),
            "--seed",
            str(seed + k),
            "--train_file",
            str(out / "train.xyz"),
            "--valid_file",
            str(out / "valid.xyz"),
            "--energy_key",
            "REF_energy",
            "--forces_key",
            "REF_forces",
            "--E0s",
            e0_arg,
            "--model",
            "ScaleShiftMACE",
            "--loss",
            "weighted",
            "--energy_weight",
            "1.0",
            "--forces_weight",
            "100.0",
            "--batch_size",
            str(batch_size),
            "--valid_batch_size",
            str(batch_size),
            "--lr",
            "0.01",
            "--ema",
            "--ema_decay",
            "0.99",
            "--default_dtype",
            dtype,
            "--device",
            "cpu",
            "--scaling",
            "rms_forces_scaling",
            "--save_cpu",
            "--eval_interval",
            "1",
        ]
        if foundation is not None:
            cmd += [
                "--foundation_model",
                str(Path(foundation).resolve()),
                "--multiheads_finetuning",
                str(mh),
                "--max_num_epochs",
                opts["max_num_epochs"],
            ]
            if mh:
                from ionmd.models.foundation import multihead_args

                cmd += multihead_args(replay)
        else:
            for key, val in opts.items():
                cmd += [f"--{key}", val]
        if pair_repulsion and foundation is None:  # a foundation model keeps its own form
            cmd.append("--pair_repulsion")
        n_epochs = int(opts["max_num_epochs"])
        if stage_two and n_epochs >= 4:
            cmd += ["--stage_two", "--start_stage_two", str(n_epochs - n_epochs // 4)]
        if config_type_weights:
            cmd += ["--config_type_weights",
                    str({"Default": 1.0, **{k: float(v) for k, v in config_type_weights.items()}})]
        cmd += list(extra_args)
        wd.mkdir(parents=True, exist_ok=True)
        with open(wd / "train.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=wd)
        # With stage two, mace writes the final model as mace_stagetwo.model (mace.model
        # is then the best stage-one checkpoint).
        model = wd / ("mace_stagetwo.model" if (wd / "mace_stagetwo.model").exists()
                      else "mace.model")
        if proc.returncode != 0 or not model.exists():
            raise IonmdError(
                f"mace_run_train failed (exit {proc.returncode}); see {wd / 'train.log'}"
            )
        pred_E, pred_F = _mace_predict(model, test, dtype)
        ermse, frmse = rmse_metrics(
            [a.calc.results["energy"] for a in test],
            pred_E,
            [len(a) for a in test],
            np.concatenate([a.calc.results["forces"] for a in test]),
            pred_F,
        )
        members.append(MemberResult(seed + k, str(model), str(model), ermse, frmse))
    result = FitResult(
        "mace",
        str(data),
        str(out),
        size,
        len(tr),
        len(va),
        len(te),
        species,
        e0,
        e0_source,
        members[0].test_energy_rmse_meV_atom,
        members[0].test_force_rmse_meV_A,
        time.time() - t0,
        members,
    )
    if foundation is not None:
        from ionmd.models.foundation import describe_finetune

        result.finetune = describe_finetune(foundation, mh, replay, members[0].model)
    result.save_json(out / "fit.json")
    return result


CONTINUE_START_LR = 5e-4
"""Starting learning rate of a DeePMD run continued from a checkpoint (a second, lower
annealing cycle; the first starts at 2e-3)."""


def deepmd_input(
    type_map: Sequence[str],
    size: str = "small",
    steps: int | None = None,
    seed: int = 0,
    sel: Sequence[int] | None = None,
    continued: bool = False,
) -> dict:
    """Return a ``dp --pt train`` input dict for an se_e2_a model (float64).

    ``sel`` (one maximum neighbour count per type of ``type_map``) defaults to
    the size's floor (``DEEPMD_SIZES[size]["sel"]``) for every type;
    :func:`fit_deepmd` passes one derived from the data (:func:`derive_sel`).

    ``continued`` is for training on from a checkpoint (``--init-model``): the
    learning rate then starts at ``CONTINUE_START_LR`` instead of 2e-3, and the
    loss prefactors stay at the values the first run ended with (energy 1,
    forces 1) instead of ramping up from force-dominated ones again.
    """
    if size not in DEEPMD_SIZES:
        raise InputError(f"--size {size!r}: choose one of {', '.join(DEEPMD_SIZES)}")
    s = DEEPMD_SIZES[size]
    nsteps = int(steps if steps is not None else s["steps"])
    if sel is None:
        sel = [int(s["sel"])] * len(type_map)
    elif len(sel) != len(type_map):
        raise InputError(
            f"sel {list(sel)}: need one count per type of {list(type_map)}, got {len(sel)}"
        )
    sel = [int(n) for n in sel]
    return {
        "model": {
            "type_map": list(type_map),
            "descriptor": {
                "type": "se_e2_a",
                "sel": sel,
                "rcut_smth": 0.5,
                "rcut": s["rcut"],
                "neuron": s["neuron"],
                "axis_neuron": s["axis_neuron"],
                "resnet_dt": False,
                "precision": "float64",
                "seed": seed,
            },
            "fitting_net": {
                "neuron": s["fitting"],
                "resnet_dt": True,
                "precision": "float64",
                "seed": seed,
            },
        },
        "learning_rate": {
            "type": "exp",
            "decay_steps": max(1, nsteps // 100),
            "start_lr": CONTINUE_START_LR if continued else 0.002,
            "stop_lr": 3.5e-6 if nsteps > 1000 else 1e-4,
        },
        "loss": {
            "type": "ener",
            "start_pref_e": 1 if continued else 0.02,
            "limit_pref_e": 1,
            "start_pref_f": 1 if continued else 1000,
            "limit_pref_f": 1,
            "start_pref_v": 0,
            "limit_pref_v": 0,
        },
        "training": {
            "training_data": {"systems": "train", "batch_size": "auto"},
            "validation_data": {"systems": "valid", "batch_size": 1},
            "numb_steps": nsteps,
            "seed": seed,
            "disp_file": "lcurve.out",
            "disp_freq": max(1, min(1000, nsteps // 10)),
            "save_freq": max(1, min(10000, nsteps)),
        },
    }


def max_neighbours(frames: Sequence[Atoms], type_map: Sequence[str], rcut_A: float) -> list[int]:
    """Return, per type of ``type_map``, the largest number of neighbours of that type
    closer than ``rcut_A`` (Å) to any atom of any frame (periodic images included).

    This is what DeePMD's ``sel`` must cover (as ``dp neighbor-stat`` reports it):
    the neighbours of type *j* around a centre of any type, all frames. ASE's
    neighbour list includes every periodic image within reach (an atom's own
    images too), so cells smaller than the cutoff are counted right.
    """
    from ase.neighborlist import neighbor_list

    index = {s: k for k, s in enumerate(type_map)}
    best = np.zeros(len(type_map), dtype=int)
    for atoms in frames:
        types = np.array([index[s] for s in atoms.get_chemical_symbols()])
        i, j = neighbor_list("ij", atoms, rcut_A)
        per_centre = np.zeros((len(atoms), len(type_map)), dtype=int)
        np.add.at(per_centre, (i, types[j]), 1)
        best = np.maximum(best, per_centre.max(axis=0))
    return best.tolist()


def derive_sel(
    counts: Sequence[int], floor: int = 0, margin: float = 1.15, multiple: int = 4
) -> list[int]:
    """Return DeePMD ``sel`` from maximum neighbour counts: ``counts x margin``,
    rounded up to a multiple of ``multiple``, and at least ``floor`` (and ``multiple``)."""
    return [
        max(int(floor), int(multiple), int(multiple * np.ceil(c * margin / multiple - 1e-9)))
        for c in counts
    ]


def _dp_test(env: Path, model: Path, systems: Path, wd: Path) -> tuple[float, float]:
    from ionmd.models.dpenv import run_in_env

    prefix = wd / "test"
    run_in_env(
        env,
        ["dp", "--pt", "test", "-m", str(model), "-s", str(systems), "-d", str(prefix)],
        cwd=wd,
        log=wd / "test.log",
    )
    e_files = sorted(wd.glob("test*.e_peratom.out"))
    f_files = sorted(wd.glob("test*.f.out"))
    if not e_files or not f_files:
        raise IonmdError(f"`dp test` wrote no detail files in {wd}; see {wd / 'test.log'}")
    e = np.concatenate([np.atleast_2d(np.loadtxt(p)) for p in e_files])
    f = np.concatenate([np.atleast_2d(np.loadtxt(p)) for p in f_files])
    return (
        float(1000.0 * np.sqrt(np.mean((e[:, 1] - e[:, 0]) ** 2))),
        float(1000.0 * np.sqrt(np.mean((f[:, 3:6] - f[:, 0:3]) ** 2))),
    )


def fit_deepmd(
    data: Path | str,
    out_dir: Path | str,
    *,
    size: str = "small",
    committee: int = 1,
    seed: int = 0,
    steps: int | None = None,
    dp_env: Path | str | None = None,
    type_map: Sequence[str] | None = None,
    sel: Sequence[int] | None = None,
    init_model: Path | str | None = None,
) -> FitResult:
    """Fit a DeePMD se_e2_a model (or a committee) with ``dp --pt train`` in the DeePMD env.

    Member *k* trains in ``out_dir/member{k}``; its checkpoint is
    ``model.ckpt.pt`` and the frozen model ``frozen.pth`` (``dp --pt freeze``,
    ready for ``pair_style mlip/torch``).

    Parameters
    ----------
    dp_env
        A virtual env whose python imports ``deepmd.pt``; default: the cached
        env of ``ionmd env deepmd`` (created on first use).
    steps
        Override the size's default number of training steps.
    type_map
        Element order of the model; default: the frames' elements by atomic number.
    sel
        Maximum number of neighbours of each type (in ``type_map`` order) within
        the cutoff. Default: derived from the data, the largest count of each
        type around any atom of any frame (:func:`max_neighbours`) x 1.15,
        rounded up to a multiple of 4, never below the size's floor
        (``DEEPMD_SIZES``). DeePMD silently drops the farthest neighbours beyond
        ``sel``, so a too-small ``sel`` gives wrong forces. ``fit.json`` records
        the choice under ``sel``.
    init_model
        Train on from earlier weights (``dp --pt train --init-model``) instead of from
        scratch, with a second, lower learning-rate cycle (:func:`deepmd_input`,
        ``continued``): either a checkpoint ``.pt`` (committee of one) or the output
        directory of an earlier ``fit_deepmd``, whose ``member{k}/model.ckpt.pt``
        member *k* continues. The architecture and ``sel`` must be the checkpoint's;
        with the same data and ``seed`` the split, and so the held-out test set, is the
        same as the earlier fit's.
    """
    from ionmd.models.dpenv import resolve_env, run_in_env

    t0 = time.time()
    data = Path(data)
    out = Path(out_dir).resolve()
    if size not in DEEPMD_SIZES:
        raise InputError(f"--size {size!r}: choose one of {', '.join(DEEPMD_SIZES)}")
    frames = load_labelled(data)
    species = list(type_map) if type_map else _species(frames)
    if sel is not None and (len(sel) != len(species) or min(sel) < 1):
        raise InputError(f"sel {list(sel)}: need one positive count per type of {species}")
    starts = _init_checkpoints(init_model, committee)
    env = resolve_env(dp_env)
    tr, va, te = split_indices(len(frames), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, idx in (("train", tr), ("valid", va), ("test", te)):
        if (out / name).exists():
            shutil.rmtree(out / name)
        write_deepmd_systems([frames[i] for i in idx], out / name, species, source=str(data))
    (out / "split.json").write_text(
        json.dumps({"train": tr.tolist(), "valid": va.tolist(), "test": te.tolist()})
    )
    rcut = float(DEEPMD_SIZES[size]["rcut"])
    floor = int(DEEPMD_SIZES[size]["sel"])
    counts = max_neighbours(frames, species, rcut)
    if sel is None:
        sel = derive_sel(counts, floor=floor)
        how = (
            f"derived: max neighbours per type within {rcut} A over all {len(frames)} frames "
            f"x 1.15, rounded up to a multiple of 4, floor {floor}"
        )
    else:
        how = "given by the user"
    sel_info = {
        "sel": [int(n) for n in sel],
        "type_map": species,
        "source": how,
        "max_neighbours_in_data": counts,
        "rcut_A": rcut,
    }
    if any(c > n for c, n in zip(counts, sel, strict=True)):
        sel_info["warning"] = "sel is below the data's neighbour counts: DeePMD drops neighbours"
    members = []
    for k in range(committee):
        wd = out / f"member{k}"
        wd.mkdir(parents=True, exist_ok=True)
        for name in ("train", "valid"):
            link = wd / name
            if not link.exists():
                link.symlink_to(Path("..") / name)
        (wd / "input.json").write_text(
            json.dumps(
                deepmd_input(species, size, steps, seed + k, sel=sel, continued=bool(starts)),
                indent=2,
            )
        )
        train = ["dp", "--pt", "train", "input.json"]
        if starts:
            train += ["--init-model", str(starts[k])]
        run_in_env(env, train, cwd=wd, log=wd / "train.log")
        frozen = wd / "frozen.pth"
        run_in_env(
            env,
            ["dp", "--pt", "freeze", "-c", ".", "-o", str(frozen)],
            cwd=wd,
            log=wd / "freeze.log",
        )
        ermse, frmse = _dp_test(env, frozen, out / "test", wd)
        members.append(MemberResult(seed + k, str(wd / "model.ckpt.pt"), str(frozen), ermse, frmse))
    result = FitResult(
        "deepmd",
        str(data),
        str(out),
        size,
        len(tr),
        len(va),
        len(te),
        species,
        {},
        "not used (DeePMD fits per-type energy biases)",
        members[0].test_energy_rmse_meV_atom,
        members[0].test_force_rmse_meV_A,
        time.time() - t0,
        members,
        sel_info,
        [str(c) for c in starts] or None,
    )
    result.save_json(out / "fit.json")
    return result


def _init_checkpoints(init_model: Path | str | None, committee: int) -> list[Path]:
    """The checkpoint each member continues from (empty: train from scratch)."""
    if init_model is None:
        return []
    path = Path(init_model).resolve()
    if path.is_file():
        if committee != 1:
            raise InputError(
                f"--init-model {init_model}: one checkpoint for a committee of {committee}; "
                "give the earlier fit's output directory (member{k}/model.ckpt.pt each)"
            )
        return [path]
    if not path.is_dir():
        raise InputError(f"--init-model {init_model}: no such file or directory")
    starts = [path / f"member{k}" / "model.ckpt.pt" for k in range(committee)]
    missing = [str(c) for c in starts if not c.is_file()]
    if missing:
        raise InputError(f"--init-model {init_model}: no checkpoint {', '.join(missing)}")
    return [c.resolve() for c in starts]  # model.ckpt.pt links to the last step's file
