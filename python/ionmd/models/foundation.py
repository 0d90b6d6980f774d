"""Fine-tuning a MACE foundation checkpoint: mace's multi-head mode and its replay data.

``ionmd fit mace --foundation CHECKPOINT`` (:func:`ionmd.models.fit.fit_mace`) runs
mace's multi-head fine-tuning by default: the fine-tuned model has two heads,
``pt_head`` (the foundation's, trained on on *replay data* so it does not forget)
and ``Default`` (fitted to the user's frames). Both heads share the descriptor.
The model keeps every element of the foundation (``--foundation_model_elements``),
so one fine-tuned file serves any subset of them; ``pair_coeff`` names only the
elements of the study.

Replay data must be a local labelled file (``--replay-data``): for a foundation
given as a file, mace needs ``--pt_train_file``, and its built-in Materials Project
replay sets (``mp``, ``omat``, ...) are downloaded, which ionmd never does.
``--no-multihead`` gives plain fine-tuning (one head, the new data alone).

Exports choose the head (``ionmd export --head NAME``, default the first head that
is not ``pt_head``; :func:`default_head`).
"""

from __future__ import annotations

from pathlib import Path

from ionmd.errors import InputError

PT_HEAD = "pt_head"
"""mace's name of the foundation (pre-training) head of a multi-head fine-tuned model."""
FT_HEAD = "Default"
"""mace's name of the head fitted to the user's data."""
DOWNLOADED_REPLAY = ("mp", "omat", "matpes_pbe", "matpes_r2scan")
"""mace ``--pt_train_file`` names that make mace download replay data."""


def load_foundation(path: Path | str, option: str = "--foundation"):
    """Load a mace-torch checkpoint (a pickled module); a clear error, naming ``option``, if
    it is not a MACE model with isolated-atom energies."""
    from ionmd.models.export import _load_mace

    try:
        model = _load_mace(Path(path))
    except InputError as exc:
        raise InputError(f"{option} {exc}") from exc
    if not hasattr(model, "atomic_energies_fn"):
        raise InputError(f"{option} {path}: not a MACE model (it has no 'atomic_energies_fn')")
    return model


def foundation_symbols(model) -> list[str]:
    """The chemical symbols a MACE model knows, in its own order."""
    from ase.data import chemical_symbols

    return [chemical_symbols[int(z)] for z in model.atomic_numbers]


def model_heads(model) -> list[str]:
    """The head names of a MACE model (``["Default"]`` for a model without heads)."""
    heads = getattr(model, "heads", None)
    return list(heads) if heads else [FT_HEAD]


def default_head(heads: list[str]) -> str:
    """The head an export uses by default: the first that is not the foundation's ``pt_head``."""
    rest = [h for h in heads if h != PT_HEAD]
    return rest[0] if rest else heads[-1]


def resolve_head(model, head: str | None, source: Path | str) -> tuple[str, int]:
    """(name, index) of ``head`` in ``model`` (default :func:`default_head`); error naming the heads."""
    heads = model_heads(model)
    name = default_head(heads) if head is None else head
    if name not in heads:
        raise InputError(f"--head {head}: {source} has the heads {', '.join(heads)}")
    return name, heads.index(name)


def check_multihead_inputs(
    foundation: Path | str, replay_data: Path | str | None, species: list[str]
) -> None:
    """Refuse a multi-head fine-tuning that mace could not run offline, naming the option.

    Checks that ``replay_data`` is given and is a file, and that the foundation knows
    every element of the fine-tuning data (``species``).
    """
    if replay_data is None:
        raise InputError(
            f"--foundation {foundation}: multi-head fine-tuning needs replay data for the "
            "foundation head: give --replay-data FILE (labelled frames, e.g. a subset of the "
            "foundation's training set), or --no-multihead for plain fine-tuning"
        )
    if str(replay_data) in DOWNLOADED_REPLAY:
        raise InputError(
            f"--replay-data {replay_data}: mace would download this data set; ionmd needs a "
            "local labelled file (download it yourself, then give its path)"
        )
    if not Path(replay_data).is_file():
        raise InputError(f"--replay-data {replay_data}: no such file")
    known = foundation_symbols(load_foundation(foundation))
    missing = [s for s in species if s not in known]
    if missing:
        raise InputError(
            f"--foundation {foundation}: the model does not know {', '.join(missing)} "
            f"(it knows {', '.join(known)}); fine-tuning cannot add elements to a foundation"
        )


def write_replay(replay_data: Path | str, path: Path) -> Path:
    """Write the replay frames in mace's training format (``REF_energy``/``REF_forces``)."""
    from ionmd.models.fit import _mace_xyz, load_labelled

    frames = load_labelled(replay_data)
    if len(frames) < 2:
        raise InputError(f"--replay-data {replay_data}: need at least 2 labelled frames "
                         f"(mace splits off a validation set), got {len(frames)}")
    _mace_xyz(frames, path)
    return path


def foundation_e0s(foundation: Path | str, species: list[str]) -> dict[str, float]:
    """The isolated-atom energies (eV) of the foundation's first head, for ``species``."""
    model = load_foundation(foundation)
    e0 = model.atomic_energies_fn.atomic_energies.detach().double()
    if e0.ndim > 1:
        e0 = e0.reshape(-1, e0.shape[-1])[0]
    index = {s: k for k, s in enumerate(foundation_symbols(model))}
    return {s: float(e0[index[s]]) for s in species}


def multihead_args(replay_xyz: Path) -> list[str]:
    """mace_run_train options of the multi-head mode with a local replay file."""
    return [
        "--pt_train_file", str(replay_xyz),
        "--foundation_model_elements", "True",
        "--filter_type_pt", "none",
    ]


def describe_finetune(
    foundation: Path | str, multihead: bool, replay_xyz: Path | None, model_path: str
) -> dict:
    """What ``fit.json`` records of a fine-tuning: mode, foundation, replay data, heads, elements."""
    model = load_foundation(model_path, option="fitted model")
    heads = model_heads(model)
    return {
        "mode": "multihead" if multihead else "plain",
        "foundation": str(Path(foundation).resolve()),
        "replay_data": str(replay_xyz) if replay_xyz is not None else None,
        "heads": heads,
        "default_head": default_head(heads),
        "elements": foundation_symbols(model),
    }
