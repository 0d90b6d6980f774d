"""``ionmd export``: turn a trained model into the TorchScript file ``pair_style mlip/torch`` loads.

MACE checkpoints (``.model``, a pickled mace-torch module) are wrapped in
mace-torch's LAMMPS interface (``forward(data, local_or_ghost, compute_virials)``
with ``r_max``, ``num_interactions`` and ``atomic_numbers`` buffers), compiled to
TorchScript, and saved with an ``ionmd.json`` extra file that records the
metadata (species, cutoff in Angstrom, layers, dtype). DeePMD-kit frozen models
(``.pth``) are checked and copied; DeePMD-kit checkpoints (``.pt``) are frozen
first, in deepmd-kit's own environment. ``fmt="pt2"`` (MACE only) writes an
AOTInductor package instead of TorchScript (:mod:`ionmd.models.export_pt2`).

Before anything is written, the exported model is evaluated on a periodic test
structure and compared with the original model; a mismatch refuses the export.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ionmd import __version__
from ionmd.errors import InputError, IonmdError

DTYPES = ("float32", "float64")
FORMATS = ("torchscript", "pt2")
# Agreement demanded between exported and original model on the test structure.
TOLERANCE = {
    "float64": {"energy_eV_per_atom": 1e-10, "force_eV_A": 1e-9},
    "float32": {"energy_eV_per_atom": 1e-4, "force_eV_A": 1e-3},
}


@dataclass
class ExportResult:
    """What was exported and how well it agrees with the original model."""

    source: str
    output: str
    family: str
    species: list[str]
    cutoff_A: float
    num_layers: int
    dtype: str
    n_test_atoms: int
    max_energy_error_eV_per_atom: float
    max_force_error_eV_A: float
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _import_mace():
    # mace must be imported before e3nn: it relaxes torch's weights-only loading.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    try:
        import mace  # noqa: F401
        from mace.calculators import LAMMPS_MACE
        from mace.data.neighborhood import get_neighborhood
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise IonmdError("exporting a MACE model needs mace-torch: pip install mace-torch") from exc
    return LAMMPS_MACE, get_neighborhood


def probe_structure(symbols: list[str], spacing_A: float = 2.0, seed: int = 0):
    """A small periodic, slightly triclinic cell holding every species, rattled (ASE Atoms)."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(2)], float)
    cell = np.diag([3, 3, 2]) * spacing_A + np.array([[0, 0, 0], [0.3, 0, 0], [0.2, -0.25, 0]])
    positions = grid @ (cell / np.array([3, 3, 2])[:, None]) + rng.normal(0, 0.08, grid.shape)
    names = [symbols[i % len(symbols)] for i in range(len(grid))]
    return Atoms(names, positions=positions, cell=cell, pbc=True)


def mace_graph(atoms, r_max: float, atomic_numbers: list[int], dtype, get_neighborhood):
    """The data dictionary mace-torch models take, for a periodic ASE structure."""
    import torch

    edge_index, shifts, unit_shifts, cell = get_neighborhood(
        positions=atoms.positions, cutoff=r_max, pbc=(True, True, True), cell=np.array(atoms.cell)
    )
    index = {z: k for k, z in enumerate(atomic_numbers)}
    species = torch.tensor([index[z] for z in atoms.numbers])
    n = len(atoms)
    return {
        "positions": torch.tensor(atoms.positions, dtype=dtype),
        "cell": torch.tensor(cell, dtype=dtype),
        "edge_index": torch.tensor(edge_index, dtype=torch.long),
        "shifts": torch.tensor(shifts, dtype=dtype),
        "unit_shifts": torch.tensor(unit_shifts, dtype=dtype),
        "node_attrs": torch.nn.functional.one_hot(species, len(atomic_numbers)).to(dtype),
        "batch": torch.zeros(n, dtype=torch.long),
        "ptr": torch.tensor([0, n], dtype=torch.long),
        "weight": torch.ones(1, dtype=dtype),
        "head": torch.zeros(1, dtype=torch.long),
    }


def _load_mace(path: Path):
    import torch

    _import_mace()
    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(f"{path}: not a loadable mace-torch model ({exc})") from exc
    for attr in ("r_max", "atomic_numbers", "num_interactions"):
        if not hasattr(model, attr):
            raise InputError(f"{path}: not a MACE model (it has no '{attr}')")
    return model


def checkpoint_dtype(model) -> str:
    """``"float32"`` or ``"float64"``: the floating dtype of a model's first floating parameter."""
    for p in model.parameters():
        if p.is_floating_point():
            return "float32" if str(p.dtype) == "torch.float32" else "float64"
    return "float64"


def export_mace(src: Path, out: Path, dtype: str | None = None, check_seed: int = 0,
                halo: bool = False, fmt: str = "torchscript",
                head: str | None = None) -> ExportResult:
    """Export a mace-torch ``.model`` for ``pair_style mlip/torch``; verify before writing.

    Parameters
    ----------
    src, out
        Checkpoint to read and TorchScript file to write.
    dtype
        ``"float64"`` (exact) or ``"float32"`` (faster on CPUs, ~1e-6 eV/Å force error);
        ``None`` keeps the checkpoint's own dtype.
    check_seed
        Seed of the rattled test structure used for verification.
    halo
        Build the halo-exchange module (:mod:`ionmd.models.mace_halo`), which runs
        on several MPI ranks with ghosts of one cutoff and provides per-atom
        virials, instead of mace-torch's LAMMPS wrapper.
    fmt
        ``"torchscript"`` or ``"pt2"`` (an AOTInductor package for this torch and
        the CPU; see :mod:`ionmd.models.export_pt2`).
    head
        Multi-head models (mace multi-head fine-tuning): the head to export; default
        the first head that is not the foundation's ``pt_head``
        (:func:`ionmd.models.foundation.default_head`). Recorded in ``ionmd.json``.
    """
    import copy

    import torch
    from e3nn.util import jit

    lammps_mace, get_neighborhood = _import_mace()
    original = _load_mace(src)
    if dtype is None:
        dtype = checkpoint_dtype(original)
    original = original.to(torch.float64)
    # --- head selection (multi-head fine-tuned models; ionmd.models.foundation) ---
    from ionmd.models.foundation import model_heads, resolve_head

    head_name, head_index = resolve_head(original, head, src)
    head_meta = {"head": head_name, "heads": model_heads(original)}
    named = head_name if getattr(original, "heads", None) else None  # None: a model without heads
    if fmt == "pt2" and head_index != 0:
        raise InputError(f"{src}: --format pt2 exports head 0 only; head {head_name!r} needs the "
                         "TorchScript export (drop --format pt2)")
    # --- end head selection ---
    if fmt == "pt2":
        return _export_mace_pt2(src, out, original, dtype, check_seed, halo, get_neighborhood)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    model = copy.deepcopy(original).to(tdtype)
    meta_extra = {}
    if halo:
        from ionmd.models import mace_halo

        module = mace_halo.build_halo_module(model, named)
        meta_extra = {"halo": True, "halo_width": int(module.halo_width)}
        scripted = jit.compile(module)
    else:
        scripted = jit.compile(lammps_mace(model, **({'head': named} if named else {})))
    meta_extra.update(head_meta)

    meta = {**_mace_meta(src, original, dtype), **meta_extra}
    z, symbols = meta["atomic_numbers"], meta["species"]
    r_max, layers = meta["cutoff_A"], meta["num_layers"]

    # Verification: exported module (reloaded from disk) against the original, eager.
    atoms = probe_structure(symbols, spacing_A=min(2.2, 0.55 * r_max), seed=check_seed)
    ref_data = mace_graph(atoms, r_max, z, torch.float64, get_neighborhood)
    ref_data["head"] = torch.tensor([head_index], dtype=torch.long)
    ref = original(dict(ref_data), training=False, compute_force=True)
    e_ref = float(ref["energy"].detach().sum())
    f_ref = ref["forces"].detach().numpy()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / "model.pt"
        torch.jit.save(scripted, str(tmp_file), _extra_files={"ionmd.json": json.dumps(meta)})
        loaded = torch.jit.load(str(tmp_file))
        if halo:
            results = [mace_halo.evaluate_halo(loaded, atoms, z, r_max, tdtype, ghosts=g)
                       for g in (False, True)]
        else:
            data = mace_graph(atoms, r_max, z, tdtype, get_neighborhood)
            got = loaded(data, torch.ones(len(atoms), dtype=tdtype), False)
            results = [(float(got["total_energy_local"].detach().sum()),
                        got["forces"].detach().double().numpy())]
        de = max(abs(e - e_ref) for e, _ in results) / len(atoms)
        df = max(float(np.abs(f - f_ref).max()) for _, f in results)
        tol = TOLERANCE[dtype]
        if not (de <= tol["energy_eV_per_atom"] and df <= tol["force_eV_A"]):
            raise IonmdError(
                f"export of {src} refused: the exported {dtype} model differs from the original "
                f"by {de:.3e} eV/atom and {df:.3e} eV/Å (allowed {tol['energy_eV_per_atom']:.0e}, "
                f"{tol['force_eV_A']:.0e}); nothing was written to {out}"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_file, out)
    return ExportResult(str(src), str(out), "mace", symbols, r_max, layers, dtype, len(atoms), de, df,
                        extra=meta_extra)


def _mace_meta(src: Path, model, dtype: str) -> dict:
    from ase.data import chemical_symbols

    z = [int(v) for v in model.atomic_numbers]
    return {
        "family": "mace",
        "species": [chemical_symbols[v] for v in z],
        "atomic_numbers": z,
        "cutoff_A": float(model.r_max),
        "num_layers": int(model.num_interactions),
        "dtype": dtype,
        "exported_by": f"ionmd {__version__}",
        "source": str(src),
    }


def _export_mace_pt2(src: Path, out: Path, original, dtype: str, check_seed: int, halo: bool,
                     get_neighborhood) -> ExportResult:
    """The ``fmt="pt2"`` branch of :func:`export_mace`."""
    from ionmd.models import export_pt2

    if halo:
        raise InputError(f"{src}: --halo is not available with --format pt2 yet; export the halo "
                         "module as TorchScript (drop --format pt2)")
    meta = _mace_meta(src, original, dtype)
    meta.update(format="pt2", **export_pt2.compiled_for())
    atoms = probe_structure(meta["species"], spacing_A=min(2.2, 0.55 * meta["cutoff_A"]),
                            seed=check_seed)
    with tempfile.TemporaryDirectory() as tmp:
        pt2, timings = export_pt2.build_pt2(original, meta, dtype, Path(tmp))
        de, df = export_pt2.verify_pt2(pt2, original, atoms, meta["atomic_numbers"],
                                       meta["cutoff_A"], dtype, get_neighborhood)
        tol = TOLERANCE[dtype]
        if not (de <= tol["energy_eV_per_atom"] and df <= tol["force_eV_A"]):
            raise IonmdError(
                f"export of {src} refused: the compiled {dtype} .pt2 differs from the original "
                f"by {de:.3e} eV/atom and {df:.3e} eV/Å (allowed {tol['energy_eV_per_atom']:.0e}, "
                f"{tol['force_eV_A']:.0e}); nothing was written to {out}"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pt2, out)
    extra = {"format": "pt2", **export_pt2.compiled_for(),
             **{k: round(v, 1) for k, v in timings.items()}}
    return ExportResult(str(src), str(out), "mace", meta["species"], meta["cutoff_A"],
                        meta["num_layers"], dtype, len(atoms), de, df, extra=extra)


def export_deepmd(src: Path, out: Path, dp_env: str | None = None) -> ExportResult:
    """Copy a frozen DeePMD ``.pth`` (checked to load) or freeze a ``.pt`` checkpoint first."""
    import torch

    from ionmd.plugin import deepmd_stubs_path

    if src.suffix == ".pt":
        from ionmd.models.dpenv import resolve_env, run_in_env

        env = resolve_env(dp_env)
        frozen = out.with_suffix(".pth")
        run_in_env(env, ["dp", "--pt", "freeze", "-c", str(src), "-o", str(frozen.resolve())])
        src = frozen
    stubs = deepmd_stubs_path()
    if stubs is not None and not hasattr(torch.ops.deepmd, "tabulate_fusion_se_a"):
        torch.ops.load_library(str(stubs))
    try:
        module = torch.jit.load(str(src), map_location="cpu")
    except Exception as exc:
        raise InputError(f"{src}: not a loadable DeePMD-kit frozen model ({str(exc).strip()})") from exc
    if not hasattr(module, "forward_lower"):
        raise InputError(f"{src}: TorchScript without forward_lower, not a DeePMD-kit model")
    if src.resolve() != out.resolve():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    species = list(module.get_type_map())
    return ExportResult(str(src), str(out), "deepmd", species, float(module.get_rcut()), 1,
                        "model", 0, 0.0, 0.0)


def export_model(src: str | Path, out: str | Path, dtype: str | None = None,
                 dp_env: str | None = None, halo: bool = False,
                 fmt: str = "torchscript", head: str | None = None) -> ExportResult:
    """Export ``src`` (MACE ``.model``, DeePMD ``.pth`` or ``.pt``) to ``out`` for the plugin.

    ``dtype=None`` keeps the checkpoint's own precision (MACE). ``halo=True`` (MACE
    only) writes the halo-exchange module; ``fmt="pt2"`` (MACE only) an AOTInductor
    package; see :func:`export_mace`.
    """
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise InputError(f"model file {src} does not exist")
    if dtype is not None and dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {DTYPES}, not {dtype!r}")
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {FORMATS}, not {fmt!r}")
    kind = _checkpoint_kind(src)
    if kind == "deepmd":
        if halo:
            raise InputError(f"{src}: --halo applies to MACE models only (DeePMD models with local "
                             "descriptors need no halo exchange)")
        if fmt != "torchscript":
            raise InputError(f"{src}: --format {fmt} applies to MACE models only; DeePMD models "
                             "are exported as deepmd-kit's frozen TorchScript")
        if head is not None:
            raise InputError(f"{src}: --head applies to multi-head MACE models only")
        return export_deepmd(src, out, dp_env)
    return export_mace(src, out, dtype, halo=halo, fmt=fmt, head=head)


def _checkpoint_kind(path: Path) -> str:
    """``"deepmd"`` for a frozen ``.pth`` or a DeePMD-kit training checkpoint, else ``"mace"``."""
    if path.suffix == ".pth":
        return "deepmd"
    if path.suffix != ".pt":
        return "mace"
    import torch

    _import_mace()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return "deepmd"  # a TorchScript archive: checked by export_deepmd
    if isinstance(obj, dict) and "model" in obj:
        return "deepmd"
    return "mace"
