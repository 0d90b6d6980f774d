"""Command-line entry points of :mod:`ionmd.models`: ``export``, ``sample``, ``label``, ``fit``, ``env``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from ionmd.errors import InputError


def _export(args: argparse.Namespace) -> int:
    from ionmd.models.export import export_model

    result = export_model(args.model, args.output, dtype=args.dtype, halo=args.halo,
                          fmt=args.format, head=args.head)
    to_json = getattr(result, "to_json", None)
    print(to_json() if callable(to_json) else result)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from ionmd.models.sampling import SamplePlan, sample_structure

    def floats(text: str, option: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise InputError(f"{option} {text!r}: expected comma-separated numbers") from None

    plan = SamplePlan(
        n_rattle=args.rattle, temperatures_K=floats(args.temperatures, "--temperatures"),
        md_frames_per_T=args.md_frames, md_stride=args.md_stride, md_equil=args.md_equil,
        dt_fs=args.dt_fs, hop_images=args.hop_images, max_hops=args.max_hops,
        n_short=args.short, strain_sigma=args.strain,
    )
    perfect_only = args.perfect_only
    result = sample_structure(
        args.output, args.structure, supercell=args.supercell, min_length_A=args.min_length_A,
        mobile=[s.strip() for s in args.mobile.split(",")] if args.mobile else None,
        vacancies=[] if perfect_only else (args.vacancy or None),
        interstitials=[] if perfect_only else (args.interstitial or None),
        calculator=args.calculator, plan=plan, seed=args.seed, label=args.label,
    )
    print(result.to_json())
    return 0


def _label(args: argparse.Namespace) -> int:
    from ionmd.models.label import label_frames

    elements = [s.strip() for s in args.elements.split(",")] if args.elements else None
    result = label_frames(
        args.frames, args.output, args.calculator, elements=elements, limit=args.limit
    )
    print(result.to_json())
    return 0


def _parse_weights(text: str | None) -> dict[str, float] | None:
    """``short_contact=0.3,other=2`` -> {"short_contact": 0.3, "other": 2.0}."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--config-type-weights: {item!r} is not NAME=WEIGHT "
                             "(e.g. short_contact=0.3)") from None
    return out


def _fit(args: argparse.Namespace) -> int:
    from ionmd.models.fit import fit_deepmd, fit_mace

    if args.committee < 1:
        raise InputError(f"--committee {args.committee}: must be at least 1")
    if args.family == "mace":
        if args.dp_env is not None:
            raise InputError("--dp-env applies to `ionmd fit deepmd` only")
        if args.init_model is not None:
            raise InputError("--init-model applies to `ionmd fit deepmd` only "
                             "(MACE: --foundation)")
        result = fit_mace(
            args.data,
            args.output,
            size=args.size,
            foundation=args.foundation,
            committee=args.committee,
            seed=args.seed,
            epochs=args.epochs,
            dtype=args.dtype,
            n_train=args.max_train,
            pair_repulsion=not args.no_zbl,
            config_type_weights=_parse_weights(args.config_type_weights),
            multihead=not args.no_multihead,
            replay_data=args.replay_data,
        )
    else:
        if args.foundation is not None:
            raise InputError("--foundation applies to `ionmd fit mace` only")
        if args.replay_data is not None or args.no_multihead:
            raise InputError("--replay-data and --no-multihead apply to `ionmd fit mace "
                             "--foundation` only")
        try:
            sel = [int(n) for n in args.sel.split(",")] if args.sel else None
        except ValueError:
            raise InputError(f"--sel {args.sel}: give integers, e.g. --sel 52,52") from None
        result = fit_deepmd(
            args.data,
            args.output,
            size=args.size,
            committee=args.committee,
            seed=args.seed,
            steps=args.steps,
            dp_env=args.dp_env,
            sel=sel,
            init_model=args.init_model,
        )
    print(result.to_json())
    return 0


def _env(args: argparse.Namespace) -> int:
    from ionmd.models.dpenv import ensure_deepmd_env

    print(ensure_deepmd_env(args.path))
    return 0


def _have_export() -> bool:
    try:
        return hasattr(importlib.import_module("ionmd.models.export"), "export_model")
    except ImportError:
        return False


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``ionmd`` parser."""
    if _have_export():
        p = subparsers.add_parser(
            "export", help="export a MACE or DeePMD model to TorchScript (or a MACE model to an "
            "AOTInductor .pt2) for pair_style mlip/torch"
        )
        p.add_argument(
            "model", type=Path, help="mace .model checkpoint, DeePMD .pt checkpoint or frozen .pth"
        )
        p.add_argument("-o", "--output", type=Path, required=True,
                       help="output file (TorchScript .pt, or .pt2 with --format pt2)")
        p.add_argument(
            "--dtype",
            choices=("float32", "float64"),
            default=None,
            help="precision of the exported MACE model (default: the checkpoint's own dtype)",
        )
        p.add_argument(
            "--format",
            choices=("torchscript", "pt2"),
            default="torchscript",
            help="MACE: torchscript (default) or pt2, an AOTInductor package compiled for this "
            "torch and the CPU (takes minutes to compile; faster steps)",
        )
        p.add_argument(
            "--halo",
            action="store_true",
            help="MACE: write the halo-exchange module (node features exchanged between MPI ranks "
            "once per layer; ghosts of one cutoff; per-atom virials)",
        )
        p.add_argument(
            "--head",
            default=None,
            help="MACE multi-head model (from `ionmd fit mace --foundation`): the head to export "
            "(default: the fine-tuned head, the first that is not pt_head)",
        )
        p.set_defaults(func=_export)

    p = subparsers.add_parser(
        "sample",
        help="training frames for any structure: rattled/strained cells, MD with the labeller, "
        "defect hops, short contacts",
        description="Sample training frames of a structure (file or built-in) into extended XYZ: "
        "strained and rattled copies of the perfect and defective cells, short Langevin MD with "
        "the labeller through ASE (CHGNet by default, when installed), frames along straight-line "
        "hops of the mobile species into nearby vacant sites and voids, and short-contact frames "
        "whose pair ranges come from the structure's own nearest-neighbour distances. Each frame "
        "carries config_type and cell_kind. Label them with --label (same calculator) or with "
        "`ionmd label`.",
    )
    p.add_argument("structure", help="structure file read by ASE, or a built-in name")
    p.add_argument("-o", "--output", type=Path, required=True, help="output extended XYZ")
    p.add_argument("--supercell", default="1", help="repeats: N or NxMxK (default 1)")
    p.add_argument("--min-length", dest="min_length_A", type=float, default=None, metavar="L_A",
                   help="instead of --supercell: smallest supercell with all widths >= L_A Å")
    p.add_argument("--mobile", default=None,
                   help="mobile species, comma-separated (default: every species)")
    p.add_argument("--vacancy", action="append", default=[], metavar="SPEC",
                   help="a vacancy cell (as `ionmd structure --vacancy`); repeatable "
                   "(default: one vacancy and one void interstitial per mobile species)")
    p.add_argument("--interstitial", action="append", default=[], metavar="SPEC",
                   help="an interstitial cell (as `ionmd structure --interstitial`); repeatable")
    p.add_argument("--perfect-only", action="store_true", help="no defective cells")
    p.add_argument("--calculator", default=None,
                   help="MD (and --label) calculator, as `ionmd label --calculator`, or none "
                   "(default: chgnet when installed, else no MD)")
    p.add_argument("--label", action="store_true",
                   help="label every frame with the calculator (energies, forces, stresses)")
    p.add_argument("--rattle", type=int, default=10, help="rattled copies per cell (default 10)")
    p.add_argument("--strain", type=float, default=0.01, help="strain standard deviation")
    p.add_argument("--temperatures", default="300,600,900", help="MD temperatures, K")
    p.add_argument("--md-frames", type=int, default=4, help="MD frames per cell and temperature")
    p.add_argument("--md-stride", type=int, default=10, help="MD steps between frames")
    p.add_argument("--md-equil", type=int, default=20, help="MD steps before the first frame")
    p.add_argument("--dt-fs", type=float, default=1.0, help="MD time step, fs")
    p.add_argument("--hop-images", type=int, default=5, help="frames per hop")
    p.add_argument("--max-hops", type=int, default=6, help="hops per defect")
    p.add_argument("--short", type=int, default=10, help="short-contact frames")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_sample)

    p = subparsers.add_parser(
        "label",
        help="attach energies/forces/stresses from a calculator (CHGNet by default) to frames",
        description="Label frames with an ASE calculator into extended XYZ (resumable). The default, "
        "CHGNet 0.3.0, is a universal potential trained on PBE data, used as a stand-in for DFT.",
    )
    p.add_argument("frames", type=Path, help="input frames (extended XYZ or any ASE-readable file)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output extended XYZ")
    p.add_argument(
        "--calculator",
        default="chgnet",
        help="chgnet | lammps:<pair_style args>;<pair_coeff args>[;types=A,B] | python:<module>:<factory> "
        "| emt | lj (default: chgnet)",
    )
    p.add_argument("--elements", default=None, help="comma-separated symbols allowed in the frames")
    p.add_argument("--limit", type=int, default=None, help="label only the first N frames")
    p.set_defaults(func=_label)

    p = subparsers.add_parser("fit", help="fit a MACE or DeePMD model to labelled frames")
    p.add_argument("family", choices=("mace", "deepmd"))
    p.add_argument("data", type=Path, help="labelled extended XYZ (from `ionmd label`)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    p.add_argument(
        "--size", choices=("tiny", "small", "medium", "fast"), default="small",
        help="model size preset (fast: MACE only, max_ell 1 and 6 radial functions)",
    )
    p.add_argument(
        "--foundation", type=Path, default=None,
        help="MACE checkpoint on disk to fine-tune from (multi-head by default; see --replay-data)"
    )
    p.add_argument(
        "--replay-data", type=Path, default=None,
        help="MACE --foundation: labelled frames replayed for the foundation head in multi-head "
        "fine-tuning (required unless --no-multihead; nothing is downloaded)",
    )
    p.add_argument(
        "--no-multihead", action="store_true",
        help="MACE --foundation: plain fine-tuning (one head, the new data alone)",
    )
    p.add_argument("--committee", type=int, default=1, help="number of models with different seeds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="MACE epochs (default: per --size)")
    p.add_argument(
        "--steps", type=int, default=None, help="DeePMD training steps (default: per --size)"
    )
    p.add_argument(
        "--sel",
        default=None,
        help="DeePMD: max neighbours per type within rcut, comma-separated in type order "
        "(default: derived from the data, x1.15)",
    )
    p.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64", help="MACE training precision"
    )
    p.add_argument(
        "--max-train",
        type=int,
        default=None,
        help="MACE: use at most N training frames (valid/test stay 10%% each of all frames)",
    )
    p.add_argument(
        "--config-type-weights",
        default=None,
        help="MACE: loss weights by the frames' config_type, e.g. short_contact=0.3",
    )
    p.add_argument(
        "--no-zbl",
        action="store_true",
        help="MACE: leave out the ZBL short-range pair repulsion (on by default)",
    )
    p.add_argument(
        "--init-model",
        type=Path,
        default=None,
        help="DeePMD: train on from a checkpoint (.pt) or an earlier `ionmd fit deepmd` "
        "directory, with a lower learning-rate cycle (same data, --seed and --sel)",
    )
    p.add_argument(
        "--dp-env",
        type=Path,
        default=None,
        help="virtual env with deepmd-kit (default: the cached env of `ionmd env deepmd`)",
    )
    p.set_defaults(func=_fit)

    p = subparsers.add_parser(
        "env", help="create (once) the cached DeePMD-kit environment and print its path"
    )
    p.add_argument("which", choices=("deepmd",))
    p.add_argument(
        "--path",
        type=Path,
        default=None,
        help="where to create it (default: ~/.cache/ionmd/envs/deepmd-3.2.0)",
    )
    p.set_defaults(func=_env)
