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

The package holds two compiled graphs of the same inputs (all tensors of the
model's dtype unless stated)::

    "model":        forward(positions [n, 3], node_attrs [n, S], edge_index [2, E] int64,
                            shifts [E, 3], energy_mask [n])
                      -> (node_energy [n], energy [] float64, forces [n, 3], virial [3, 3])
    "model_forces": the same inputs -> (node_energy [n], energy [] float64, forces [n, 3])

The plugin runs ``model_forces`` on steps where LAMMPS needs no virial (most MD
steps) and ``model`` on the others: the strain derivative costs a part of the
backward pass that an MD step without pressure output does not need.

``edge_index[0]`` is the sender, ``edge_index[1]`` the receiver (mace's order);
the edge vector is ``positions[receiver] - positions[sender] + shifts``. The
energy is ``sum(node_energy * energy_mask)`` accumulated in float64; forces and
virial (``sum r f``, eV) are its derivatives.

Halo packages (work in progress, interface ``pt2-mace-halo-1``): :func:`trace_halo`
exports the halo module of :mod:`ionmd.models.mace_halo` with its exchange as the
custom ops ``ionmd::halo_forward`` / ``halo_reverse``, which stay in the graph;
``forward(node_attrs [N, S], vectors [E, 3], edge_index [2, E], ghost_atom [G])
-> (local node energy [N - G], energy [] float64, dE/dvectors [E, 3])``.
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

# Names of the two graphs in a package (see the module docstring). ``model`` is
# AOTInductor's default name, so ``aoti_load_package(path)`` loads the full one.
MODEL_VIRIAL = "model"
MODEL_FORCES = "model_forces"

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
    """The function that is traced: mace node energies and their derivatives.

    With ``virial=False`` the strain is left out and the function returns
    (node_energy, energy, forces) only.
    """

    def __init__(self, model, virial: bool = True):
        self.model = model
        self.virial = virial

    def __call__(self, positions, node_attrs, edge_index, shifts, energy_mask):
        import torch

        positions = positions.detach().requires_grad_(True)
        n = positions.shape[0]
        if self.virial:
            strain = torch.zeros((3, 3), dtype=positions.dtype, device=positions.device,
                                 requires_grad=True)
            strained, strained_shifts = positions + positions @ strain, shifts + shifts @ strain
        else:
            strained, strained_shifts = positions, shifts
        data = {
            "positions": strained,
            "node_attrs": node_attrs,
            "edge_index": edge_index,
            "shifts": strained_shifts,
            "batch": torch.zeros(n, dtype=torch.long, device=positions.device),
            "ptr": torch.zeros(2, dtype=torch.long, device=positions.device),
            "head": torch.zeros(1, dtype=torch.long, device=positions.device),
            "cell": torch.zeros((3, 3), dtype=positions.dtype, device=positions.device),
        }
        out = self.model(data, training=False, compute_force=False)
        node_energy = out["node_energy"]
        energy = (node_energy * energy_mask).sum()
        energy64 = (node_energy.detach().double() * energy_mask.double()).sum()
        if not self.virial:
            (d_pos,) = torch.autograd.grad(energy, [positions])
            return node_energy.detach(), energy64, -d_pos
        d_pos, d_strain = torch.autograd.grad(energy, [positions, strain])
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


def trace_mace(model, dtype, virial: bool = True) -> tuple:
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
        graph = make_fx(EnergyForcesVirial(rebuilt, virial), tracing_mode="symbolic",
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
        "ionmd.interface": "pt2-mace-2",
        "ionmd.min_atoms": str(MIN_ATOMS),
        "ionmd.min_edges": str(MIN_EDGES),
    }
    return flat


def compile_package(programs: dict, out_file: Path, metadata: dict[str, str]) -> float:
    """AOTInductor-compile ``{name: program}`` into one package ``out_file``; returns the seconds."""
    import torch
    from torch._inductor.package import package_aoti

    t0 = time.perf_counter()
    files = {}
    for name, program in programs.items():
        options = dict(INDUCTOR_OPTIONS)
        options["aot_inductor.metadata"] = dict(metadata)
        options["aot_inductor.package"] = True
        args, kwargs = program.example_inputs
        files[name] = torch._inductor.aot_compile(program.module(check_guards=False), args, kwargs,
                                                  options=options)
    package_aoti(str(out_file), files)
    return time.perf_counter() - t0


def evaluate_package(runner, atoms, z: list[int], r_max: float, dtype, get_neighborhood):
    """(energy eV, forces eV/Å, virial eV or None) of a loaded package graph on a periodic structure.

    Arrays are float64 numpy; the virial is None for the ``model_forces`` graph.
    """
    import torch

    from ionmd.models.export import mace_graph

    data = mace_graph(atoms, r_max, z, dtype, get_neighborhood)
    out = runner(data["positions"], data["node_attrs"], data["edge_index"], data["shifts"],
                 torch.ones(len(atoms), dtype=dtype))
    virial = out[3].double().numpy() if len(out) > 3 else None
    return float(out[1]), out[2].double().numpy(), virial


def build_pt2(model, meta: dict, dtype: str, tmp_dir: Path) -> tuple[Path, dict]:
    """Trace and compile ``model`` into ``tmp_dir/model.pt2``; returns (path, timings)."""
    import torch

    tdtype = torch.float32 if dtype == "float32" else torch.float64
    programs, timings = {}, {}
    for name, virial in ((MODEL_VIRIAL, True), (MODEL_FORCES, False)):
        programs[name], t = trace_mace(model, tdtype, virial)
        for key, seconds in t.items():
            timings[key] = timings.get(key, 0.0) + seconds
    out_file = Path(tmp_dir) / "model.pt2"
    timings["compile_s"] = compile_package(programs, out_file, package_metadata(meta, dtype))
    return out_file, timings


def load_package(path: Path, name: str = MODEL_VIRIAL):
    """The callable of one graph of a ``.pt2`` package (:data:`MODEL_VIRIAL` or :data:`MODEL_FORCES`)."""
    from torch._inductor.package import load_package as aoti_load

    return aoti_load(str(path), name)


def verify_pt2(pt2: Path, original, atoms, z, r_max, dtype: str, get_neighborhood) -> tuple:
    """(energy error eV/atom, force error eV/Å) of both package graphs against eager mace in float64."""
    import torch

    from ionmd.models.export import mace_graph

    ref_data = mace_graph(atoms, r_max, z, torch.float64, get_neighborhood)
    ref_data["positions"].requires_grad_(True)
    ref = original(dict(ref_data), training=False, compute_force=True)
    e_ref = float(ref["energy"].detach().sum())
    f_ref = ref["forces"].detach().numpy()
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    de = df = 0.0
    for name in (MODEL_VIRIAL, MODEL_FORCES):
        e, f, _ = evaluate_package(load_package(pt2, name), atoms, z, r_max, tdtype,
                                   get_neighborhood)
        de = max(de, abs(e - e_ref) / len(atoms))
        df = max(df, float(np.abs(f - f_ref).max()))
    return de, df




# --------------------------------------------------------------------------------------
# Halo packages (``ionmd export --halo --format pt2``).

# Halo graphs: at least this many local and ghost nodes (the plugin pads smaller ones).
MIN_GHOSTS = 2
MIN_LOCAL = 2


class HaloEnergyGrad:
    """The traced halo function: local node energies, their float64 sum and dE/d(edge vectors)."""

    def __init__(self, module):
        self.module = module

    def __call__(self, node_attrs, vectors, edge_index, ghost_atom):
        import torch

        vectors = vectors.detach().requires_grad_(True)
        node_energy = self.module(node_attrs, vectors, edge_index, ghost_atom)
        (grad,) = torch.autograd.grad(node_energy.sum(), [vectors])
        return node_energy.detach(), node_energy.detach().double().sum(), grad


def halo_example_inputs(n_local: int, n_ghosts: int, n_edges: int, n_species: int, dtype,
                        seed: int = 0):
    """Random inputs of the halo interface; ghosts image local rows (index-copy exchange)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n = n_local + n_ghosts
    species = torch.arange(n) % n_species
    receiver = torch.randint(0, n_local, (n_edges,), generator=g)
    sender = (receiver + 1 + torch.randint(0, n - 1, (n_edges,), generator=g)) % n
    vectors = (torch.rand((n_edges, 3), generator=g, dtype=torch.float64) - 0.5) * 5.0
    return (
        torch.nn.functional.one_hot(species, n_species).to(dtype),
        vectors.to(dtype),
        torch.stack([sender, receiver]),
        torch.randint(0, n_local, (n_ghosts,), generator=g),
    )


def trace_halo(model, dtype, head: str | None = None) -> tuple:
    """``torch.export.ExportedProgram`` of :class:`HaloEnergyGrad`; returns (program, timings)."""
    import torch
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    from ionmd.models import mace_halo

    rebuilt = rebuild_for_export(model).to(dtype)
    module = mace_halo.build_halo_module(rebuilt, head, exported=True)
    n_species = int(len(model.atomic_numbers))
    args = halo_example_inputs(9, 4, 37, n_species, dtype)
    timings = {}
    t0 = time.perf_counter()
    with _python_spherical_harmonics(), torch.fx.experimental._config.patch(
        use_duck_shape=False
    ):
        graph = make_fx(HaloEnergyGrad(module), tracing_mode="symbolic",
                        _allow_non_fake_inputs=True)(*args)
    timings["make_fx_s"] = time.perf_counter() - t0
    nodes = Dim("n_nodes", min=MIN_LOCAL + MIN_GHOSTS, max=MAX_DIM)
    edges = Dim("n_edges", min=MIN_EDGES, max=MAX_DIM)
    ghosts = Dim("n_ghosts", min=MIN_GHOSTS, max=MAX_DIM - MIN_LOCAL)
    shapes = ({0: nodes}, {0: edges}, {1: edges}, {0: ghosts})
    t0 = time.perf_counter()
    program = torch.export.export(graph, args, dynamic_shapes=shapes, strict=False)
    timings["export_s"] = time.perf_counter() - t0
    return program, timings


def build_halo_pt2(model, meta: dict, dtype: str, tmp_dir: Path,
                   head: str | None = None) -> tuple[Path, dict]:
    """Trace and compile the halo module of ``model`` into ``tmp_dir/model.pt2``; (path, timings).

    Not yet wired into ``ionmd export --halo --format pt2``: the plugin's halo
    ``.pt2`` back end (interface ``pt2-mace-halo-1``) is not yet checked in LAMMPS.
    """
    import torch

    from ionmd.models import mace_halo

    tdtype = torch.float32 if dtype == "float32" else torch.float64
    program, timings = trace_halo(model, tdtype, head)
    flat = package_metadata(meta, dtype)
    flat.update({"ionmd.interface": "pt2-mace-halo-1", "ionmd.halo": "1",
                 "ionmd.halo_width": str(mace_halo.exchange_width(model)),
                 "ionmd.min_local": str(MIN_LOCAL), "ionmd.min_ghosts": str(MIN_GHOSTS)})
    out_file = Path(tmp_dir) / "model.pt2"
    timings["compile_s"] = compile_package({MODEL_VIRIAL: program}, out_file, flat)
    return out_file, timings
