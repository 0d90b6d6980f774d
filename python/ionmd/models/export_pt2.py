"""``ionmd export --format pt2``: MACE as an AOTInductor package for ``pair_style mlip/torch``.

TorchScript is deprecated in torch 2.x; ``torch.export`` plus AOTInductor compiles
the model, its forces and its virial into one ahead-of-time package (``.pt2``)
that the plugin runs without autograd. The recipe (see
``shared/notes/aotinductor-mace.md`` for why each step is needed):

1. rebuild the model without e3nn's code generation (``mace.tools.compile.prepare``),
   under float64 so that the weights are not rounded;
2. replace e3nn's scripted spherical harmonics by their Python version, so that
   tracing keeps the number of edges symbolic;
3. trace energy, forces and virial in one graph with ``make_fx`` (``torch.export``
   of a function that calls ``torch.autograd.grad`` fails or returns fake forces);
4. ``torch.export`` that graph with dynamic numbers of atoms and edges (at least
   2 of each: the plugin pads smaller ranks) and compile it with
   ``torch._inductor.aoti_compile_and_package``.

The package records, as AOTInductor metadata (flat string keys), the same model
metadata as the TorchScript export plus the torch version and device type it was
compiled for, which the plugin checks at load.

Graph interface (all tensors of the model's dtype unless stated)::

    forward(positions [n, 3], node_attrs [n, S], edge_index [2, E] int64,
            shifts [E, 3], energy_mask [n])
      -> (node_energy [n], energy [] float64, forces [n, 3], virial [3, 3])

``edge_index[0]`` is the sender, ``edge_index[1]`` the receiver (mace's order);
the edge vector is ``positions[receiver] - positions[sender] + shifts``. The
energy is ``sum(node_energy * energy_mask)`` accumulated in float64; forces and
virial (``sum r f``, eV) are its derivatives.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path

import numpy as np

from ionmd.errors import IonmdError

# The smallest numbers of atoms and edges a package accepts (torch.export
# specialises sizes 0 and 1); the plugin pads smaller inputs up to these.
MIN_ATOMS = 2
MIN_EDGES = 2
MAX_DIM = 1 << 30

# Inductor options: freeze the weights into the graph (constant folding at
# compile time), no autotuning (it would multiply the compile time). AOTInductor
# checks inputs only when built with AOTI_RUNTIME_CHECK_INPUTS; the plugin builds
# them itself and pads them to MIN_ATOMS / MIN_EDGES.
INDUCTOR_OPTIONS = {
    "aot_inductor.use_runtime_constant_folding": False,
    "freezing": True,
    "max_autotune": False,
}


@contextlib.contextmanager
def _python_spherical_harmonics():
    """Let tracing see through e3nn's ``torch.jit.script`` spherical harmonics."""
    from e3nn.o3 import _spherical_harmonics as sh

    scripted = sh._spherical_harmonics
    plain = getattr(scripted, "_torchdynamo_inline", None)
    if plain is None:  # pragma: no cover - depends on the e3nn/torch version
        raise IonmdError("cannot export MACE as .pt2: e3nn's spherical harmonics carry no "
                         "Python version (_torchdynamo_inline) in this torch/e3nn")
    sh._spherical_harmonics = plain
    try:
        yield
    finally:
        sh._spherical_harmonics = scripted


def rebuild_for_export(model):
    """A float64 copy of a mace-torch model without e3nn code generation (mace's ``prepare``)."""
    import torch
    from mace.tools.compile import prepare
    from mace.tools.scripts_utils import extract_model

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rebuilt = prepare(extract_model)(copy.deepcopy(model).to(torch.float64), map_location="cpu")
    finally:
        torch.set_default_dtype(previous)
    return rebuilt.to(torch.float64).eval()


class EnergyForcesVirial:
    """The function that is traced: mace node energies and their derivatives."""

    def __init__(self, model):
        self.model = model

    def __call__(self, positions, node_attrs, edge_index, shifts, energy_mask):
        import torch

        positions = positions.detach().requires_grad_(True)
        strain = torch.zeros((3, 3), dtype=positions.dtype, device=positions.device,
                             requires_grad=True)
        n = positions.shape[0]
        data = {
            "positions": positions + positions @ strain,
            "node_attrs": node_attrs,
            "edge_index": edge_index,
            "shifts": shifts + shifts @ strain,
            "batch": torch.zeros(n, dtype=torch.long, device=positions.device),
            "ptr": torch.zeros(2, dtype=torch.long, device=positions.device),
            "head": torch.zeros(1, dtype=torch.long, device=positions.device),
            "cell": torch.zeros((3, 3), dtype=positions.dtype, device=positions.device),
        }
        out = self.model(data, training=False, compute_force=False)
        node_energy = out["node_energy"]
        energy = (node_energy * energy_mask).sum()
        d_pos, d_strain = torch.autograd.grad(energy, [positions, strain])
        energy64 = (node_energy.detach().double() * energy_mask.double()).sum()
        return node_energy.detach(), energy64, -d_pos, -d_strain


def example_inputs(n_atoms: int, n_edges: int, n_species: int, dtype, seed: int = 0):
    """Random inputs of the graph interface (distinct sizes so that tracing keeps them apart)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    positions = torch.rand((n_atoms, 3), generator=g, dtype=torch.float64) * 6.0
    species = torch.arange(n_atoms) % n_species
    sender = torch.randint(0, n_atoms, (n_edges,), generator=g)
    receiver = (sender + 1 + torch.randint(0, n_atoms - 1, (n_edges,), generator=g)) % n_atoms
    return (
        positions.to(dtype),
        torch.nn.functional.one_hot(species, n_species).to(dtype),
        torch.stack([sender, receiver]),
        (torch.rand((n_edges, 3), generator=g, dtype=torch.float64) - 0.5).to(dtype),
        torch.ones(n_atoms, dtype=dtype),
    )


def trace_mace(model, dtype) -> tuple:
    """``torch.export.ExportedProgram`` of :class:`EnergyForcesVirial`; returns (program, timings)."""
    import torch
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    rebuilt = rebuild_for_export(model).to(dtype)
    for p in rebuilt.parameters():
        p.requires_grad_(False)
    n_species = int(len(model.atomic_numbers))
    args = example_inputs(11, 37, n_species, dtype)
    timings = {}
    t0 = time.perf_counter()
    with _python_spherical_harmonics(), torch.fx.experimental._config.patch(
        use_duck_shape=False
    ):
        graph = make_fx(EnergyForcesVirial(rebuilt), tracing_mode="symbolic",
                        _allow_non_fake_inputs=True)(*args)
    timings["make_fx_s"] = time.perf_counter() - t0

    atoms = Dim("n_atoms", min=MIN_ATOMS, max=MAX_DIM)
    edges = Dim("n_edges", min=MIN_EDGES, max=MAX_DIM)
    shapes = ({0: atoms}, {0: atoms}, {1: edges}, {0: edges}, {0: atoms})
    t0 = time.perf_counter()
    program = torch.export.export(graph, args, dynamic_shapes=shapes, strict=False)
    timings["export_s"] = time.perf_counter() - t0
    return program, timings


def compiled_for() -> dict[str, str]:
    """The torch version and device type a package compiled here runs with."""
    import torch

    return {"torch_version": torch.__version__, "device_type": "cpu"}


def package_metadata(meta: dict, dtype: str) -> dict[str, str]:
    """Flat string metadata stored in the package (``ionmd.*`` keys plus the json blob)."""
    flat = {
        "ionmd.json": json.dumps(meta),
        "ionmd.family": str(meta["family"]),
        "ionmd.species": ",".join(meta["species"]),
        "ionmd.cutoff_A": repr(float(meta["cutoff_A"])),
        "ionmd.num_layers": str(int(meta["num_layers"])),
        "ionmd.dtype": dtype,
        "ionmd.source": str(meta.get("source", "CHECKPOINT.model")),
        "ionmd.torch_version": compiled_for()["torch_version"],
        "ionmd.device_type": compiled_for()["device_type"],
        "ionmd.interface": "pt2-mace-1",
        "ionmd.min_atoms": str(MIN_ATOMS),
        "ionmd.min_edges": str(MIN_EDGES),
    }
    return flat


def compile_package(program, out_file: Path, metadata: dict[str, str]) -> float:
    """AOTInductor-compile ``program`` into ``out_file``; returns the seconds it took."""
    import torch

    options = dict(INDUCTOR_OPTIONS)
    options["aot_inductor.metadata"] = metadata
    t0 = time.perf_counter()
    torch._inductor.aoti_compile_and_package(program, package_path=str(out_file),
                                             inductor_configs=options)
    return time.perf_counter() - t0


def evaluate_package(runner, atoms, z: list[int], r_max: float, dtype, get_neighborhood):
    """Energy (eV) and forces (eV/Å, float64 numpy) of a loaded package on a periodic structure."""
    import torch

    from ionmd.models.export import mace_graph

    data = mace_graph(atoms, r_max, z, dtype, get_neighborhood)
    _, energy, forces, virial = runner(
        data["positions"], data["node_attrs"], data["edge_index"], data["shifts"],
        torch.ones(len(atoms), dtype=dtype),
    )
    return float(energy), forces.double().numpy(), virial.double().numpy()


def build_pt2(model, meta: dict, dtype: str, tmp_dir: Path) -> tuple[Path, dict]:
    """Trace and compile ``model`` into ``tmp_dir/model.pt2``; returns (path, timings)."""
    import torch

    tdtype = torch.float32 if dtype == "float32" else torch.float64
    program, timings = trace_mace(model, tdtype)
    out_file = Path(tmp_dir) / "model.pt2"
    timings["compile_s"] = compile_package(program, out_file, package_metadata(meta, dtype))
    return out_file, timings


def load_package(path: Path):
    """The callable of a ``.pt2`` package (``torch._inductor.aoti_load_package``)."""
    import torch

    return torch._inductor.aoti_load_package(str(path))


def verify_pt2(pt2: Path, original, atoms, z, r_max, dtype: str, get_neighborhood) -> tuple:
    """(energy error eV/atom, force error eV/Å) of the package against eager mace in float64."""
    import torch

    from ionmd.models.export import mace_graph

    ref_data = mace_graph(atoms, r_max, z, torch.float64, get_neighborhood)
    ref_data["positions"].requires_grad_(True)
    ref = original(dict(ref_data), training=False, compute_force=True)
    e_ref = float(ref["energy"].detach().sum())
    f_ref = ref["forces"].detach().numpy()
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    e, f, _ = evaluate_package(load_package(pt2), atoms, z, r_max, tdtype, get_neighborhood)
    return abs(e - e_ref) / len(atoms), float(np.abs(f - f_ref).max())


