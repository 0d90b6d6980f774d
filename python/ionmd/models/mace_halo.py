"""MACE as a halo-exchange module: the one place that knows mace-torch's internals.

``pair_style mlip/torch`` runs message-passing models across MPI ranks by giving
each rank a graph whose receivers are its own atoms and whose senders may be
ghost atoms within one cutoff. Before every interaction layer but the first, the
ghosts' node features are overwritten with their owners' features by the op
``ionmd::halo_exchange`` (compiled in ``libionmd_ops.so``; inside LAMMPS it
travels through forward communication, and its backward through reverse
communication). This module rebuilds a mace-torch ``MACE``/``ScaleShiftMACE``
forward pass from the model's own blocks with that op between layers:

``forward(node_attrs [N, S], vectors [E, 3], edge_index [2, E], ghost_atom [G])``
returns the energies (eV) of the ``N - G`` local nodes (the first rows). ``vectors``
are ``x[receiver] - x[sender]`` in Angstrom (``edge_index[0]`` is the sender, as in
mace); forces and virials follow from the gradient on ``vectors``. The last ``G``
nodes are ghosts: inside LAMMPS ``ghost_atom`` holds their LAMMPS atom indices and
their features arrive by communication; in Python (no communication installed) it
holds the local row each ghost images, and the exchange is an index copy.

The blocks used here (``atomic_energies_fn``, ``node_embedding``,
``spherical_harmonics``, ``radial_embedding``, ``interactions``, ``products``,
``readouts``, ``scale_shift``, ``pair_repulsion_fn``) and the interaction call
signature are mace-torch 0.3.x internals; :func:`check_mace_internals` fails
loudly when a mace-torch release changes them, and ``tests/test_models_halo.py``
calls it.
"""

import os
from typing import Any, List  # noqa: UP035  (TorchScript annotations)

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
import mace  # noqa: E402,F401  (before e3nn: mace relaxes torch's weights-only loading)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from e3nn.util import jit  # noqa: E402
from e3nn.util.jit import compile_mode  # noqa: E402
from mace.modules.blocks import ScaleShiftBlock  # noqa: E402

from ionmd.errors import InputError, IonmdError  # noqa: E402

# Blocks of a mace-torch model that the halo module reuses.
REQUIRED_BLOCKS = ("atomic_energies_fn", "node_embedding", "spherical_harmonics", "radial_embedding",
                   "interactions", "products", "readouts", "atomic_numbers", "r_max",
                   "num_interactions")
# Keyword arguments of an interaction block's forward that the halo module passes.
INTERACTION_ARGS = ("node_attrs", "node_feats", "edge_attrs", "edge_feats", "edge_index", "cutoff",
                    "first_layer")


def load_ops_library() -> None:
    """Register ``ionmd::halo_exchange`` in this Python process (``libionmd_ops.so``)."""
    if _has_op():
        return
    from ionmd.plugin import ops_library_path

    path = ops_library_path()
    if path is None:
        raise IonmdError("libionmd_ops.so (the halo exchange op) is not installed; rebuild ionmd with "
                         "`pip install --no-build-isolation -e .`")
    torch.ops.load_library(str(path))


def _has_op() -> bool:
    try:
        torch.ops.ionmd.halo_exchange  # noqa: B018
        return True
    except (AttributeError, RuntimeError):
        return False


def check_mace_internals(model) -> None:
    """Raise :class:`IonmdError` naming what is missing if ``model`` lacks a block we reuse."""
    import inspect

    missing = [name for name in REQUIRED_BLOCKS if not hasattr(model, name)]
    if missing:
        raise IonmdError(f"this mace-torch model has no {', '.join(missing)}: the halo export "
                         f"(ionmd.models.mace_halo) needs updating for this mace-torch version")
    for block in model.interactions:
        params = inspect.signature(type(block).forward).parameters
        absent = [a for a in INTERACTION_ARGS if a not in params]
        if absent:
            raise IonmdError(f"{type(block).__name__}.forward has no argument {', '.join(absent)}: "
                             f"the halo export needs updating for this mace-torch version")
    if hasattr(model, "joint_embedding"):
        raise InputError("models with extra node embeddings (joint_embedding) are not supported by "
                         "the halo export; export without --halo")


def _with_zero_row(x: torch.Tensor) -> torch.Tensor:
    """``x`` with one row of zeros appended (a stand-in row for empty ranks)."""
    return torch.cat([x, x.new_zeros([1] + list(x.shape[1:]))], 0)


@compile_mode("script")
class NoPairRepulsion(torch.nn.Module):
    """Stands in for mace's ZBL pair repulsion in models without one: zero energy."""

    def forward(self, lengths: torch.Tensor, node_attrs: torch.Tensor, edge_index: torch.Tensor,
                atomic_numbers: torch.Tensor) -> torch.Tensor:
        return torch.zeros(node_attrs.shape[0], dtype=lengths.dtype, device=lengths.device)


_EXPORTED_OPS_LINKED = False


def link_exported_ops() -> None:
    """Make ``ionmd::halo_reverse`` the autograd backward of ``ionmd::halo_forward``.

    The two ops (``libionmd_ops.so``) are the halo exchange without C++ autograd,
    for ``torch.export``: tracing forces through this link keeps both as graph
    nodes, which AOTInductor calls at run time (through LAMMPS communication in
    the plugin). Idempotent.
    """
    global _EXPORTED_OPS_LINKED
    load_ops_library()
    if _EXPORTED_OPS_LINKED:
        return
    if not hasattr(torch.ops.ionmd, "halo_forward"):
        raise IonmdError("libionmd_ops.so has no ionmd::halo_forward (an older build); rebuild ionmd "
                         "with `pip install --no-build-isolation -e .`")

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])

    def backward(ctx, grad):
        (ghost_atom,) = ctx.saved_tensors
        return torch.ops.ionmd.halo_reverse(grad, ghost_atom), None

    torch.library.register_autograd("ionmd::halo_forward", backward, setup_context=setup_context)
    _EXPORTED_OPS_LINKED = True


@compile_mode("script")
class HaloMACE(torch.nn.Module):
    """A mace-torch model's blocks, run layer by layer with a halo exchange in between.

    ``exported=True`` builds the module for ``torch.export`` (``--format pt2``): the
    exchange is ``ionmd::halo_forward`` (see :func:`link_exported_ops`), and the
    product blocks always see one extra zero row, so that a rank without atoms
    needs no branch on the number of local nodes.
    """

    def __init__(self, mace_model, head_index: int, width: int, exported: bool = False):
        super().__init__()
        self.exported = exported
        self.atomic_energies_fn = mace_model.atomic_energies_fn
        self.node_embedding = mace_model.node_embedding
        self.spherical_harmonics = mace_model.spherical_harmonics
        self.radial_embedding = mace_model.radial_embedding
        self.interactions = mace_model.interactions
        self.products = mace_model.products
        self.readouts = mace_model.readouts
        if hasattr(mace_model, "scale_shift"):
            self.scale_shift = mace_model.scale_shift
        else:  # plain MACE: interaction energies are not rescaled
            self.scale_shift = ScaleShiftBlock(scale=1.0, shift=0.0)
        if hasattr(mace_model, "pair_repulsion"):
            self.pair_repulsion_fn = mace_model.pair_repulsion_fn
        else:
            self.pair_repulsion_fn = NoPairRepulsion()
        self.register_buffer("atomic_numbers", mace_model.atomic_numbers.clone())
        self.register_buffer("r_max", mace_model.r_max.clone())
        self.register_buffer("num_interactions", mace_model.num_interactions.clone())
        self.register_buffer("head", torch.tensor([head_index], dtype=torch.long))
        self.register_buffer("halo_width", torch.tensor(width, dtype=torch.long))

    def forward(self, node_attrs: torch.Tensor, vectors: torch.Tensor, edge_index: torch.Tensor,
                ghost_atom: torch.Tensor) -> torch.Tensor:
        n_nodes = node_attrs.shape[0]
        n_local = n_nodes - ghost_atom.shape[0]
        local_attrs = node_attrs[:n_local]
        heads = self.head.expand(n_local)
        rows = torch.arange(n_local, device=node_attrs.device)
        lengths = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)

        node_e0 = self.atomic_energies_fn(local_attrs)[rows, heads]
        node_feats = self.node_embedding(node_attrs)
        edge_attrs = self.spherical_harmonics(vectors)
        edge_feats, cutoff = self.radial_embedding(lengths, node_attrs, edge_index, self.atomic_numbers)
        pair = self.pair_repulsion_fn(lengths, node_attrs, edge_index, self.atomic_numbers)
        node_es = [pair[:n_local]]
        layer_feats: List[torch.Tensor] = []  # noqa: UP006
        for i, (interaction, product) in enumerate(zip(self.interactions, self.products)):  # noqa: B905
            if i > 0 and self.exported:
                node_feats = torch.ops.ionmd.halo_forward(node_feats, ghost_atom)
            elif i > 0:
                node_feats = torch.ops.ionmd.halo_exchange(node_feats, ghost_atom)
            node_feats, sc = interaction(
                node_attrs=node_attrs, node_feats=node_feats, edge_attrs=edge_attrs,
                edge_feats=edge_feats, edge_index=edge_index, cutoff=cutoff, first_layer=(i == 0),
            )
            feats, attrs = node_feats[:n_local], local_attrs
            if sc is not None:
                sc = sc[:n_local]
            if self.exported or n_local == 0:  # mace's contraction cannot reshape zero rows
                feats, attrs = _with_zero_row(feats), _with_zero_row(attrs)
                if sc is not None:
                    sc = _with_zero_row(sc)
            node_feats = product(node_feats=feats, sc=sc, node_attrs=attrs)[:n_local]
            layer_feats.append(node_feats)
        for i, readout in enumerate(self.readouts):
            k = -1 if len(self.readouts) == 1 else i
            node_es.append(readout(layer_feats[k], heads)[rows, heads])
        inter = torch.sum(torch.stack(node_es, dim=0), dim=0)
        inter = self.scale_shift(inter, heads)
        return node_e0.to(inter.dtype) + inter


def build_halo_module(model, head: str | None = None, exported: bool = False) -> HaloMACE:
    """Wrap a mace-torch ``MACE``/``ScaleShiftMACE`` in the halo-exchange forward (not scripted).

    ``exported=True``: the form that ``torch.export`` traces (:class:`HaloMACE`).
    """
    check_mace_internals(model)
    if exported:
        link_exported_ops()
    else:
        load_ops_library()
    heads = list(getattr(model, "heads", None) or [None])
    head_index = heads.index(head) if head is not None else len(heads) - 1
    module = HaloMACE(model, head_index, exchange_width(model), exported)
    for param in module.parameters():  # forces need gradients on edge vectors only
        param.requires_grad_(False)
    return module


def exchange_width(model) -> int:
    """Feature values per atom in one exchange: the widest product output fed to a next layer."""
    widths = [int(p.linear.irreps_out.dim) for p in list(model.products)[:-1]]
    return max(widths, default=0)


def script_halo_module(model, head: str | None = None):
    """TorchScript-compile the halo module of ``model`` (e3nn's compiler)."""
    return jit.compile(build_halo_module(model, head))


# --------------------------------------------------------------------------------------
# Graphs for checking a halo module in Python, against the original model.


def periodic_edges(atoms, r_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sender, receiver, shift_A) of every pair within ``r_max`` in a periodic cell.

    The sender's image sits at ``x[sender] - shift``, so the edge vector is
    ``x[receiver] - x[sender] + shift`` (mace's convention).
    """
    from mace.data.neighborhood import get_neighborhood

    edge_index, shifts, _, _ = get_neighborhood(
        positions=atoms.positions, cutoff=r_max, pbc=(True, True, True), cell=np.array(atoms.cell)
    )
    return edge_index[0], edge_index[1], shifts


def halo_inputs(atoms, atomic_numbers: list[int], r_max: float, dtype, ghosts: bool,
                positions=None) -> dict[str, Any]:
    """Inputs of a halo module for a periodic structure, plus the atom each node and edge maps to.

    With ``ghosts=False`` the graph is folded (nodes are the atoms; periodic
    images enter as edge vectors). With ``ghosts=True`` every sender image outside
    the cell becomes a ghost node, whose features the op copies from its owner:
    the same exchange LAMMPS performs, in index-copy form. ``positions`` (a torch
    tensor, float64, Angstrom) may be given to differentiate through.
    """
    sender, receiver, shift = periodic_edges(atoms, r_max)
    n = len(atoms)
    index = {z: k for k, z in enumerate(atomic_numbers)}
    species = np.array([index[z] for z in atoms.numbers])
    if positions is None:
        positions = torch.tensor(atoms.positions, dtype=torch.float64)
    shift_t = torch.tensor(shift, dtype=torch.float64)
    vectors = positions[receiver] - positions[sender] + shift_t
    sender_node = sender.copy()
    owner = np.zeros(0, dtype=np.int64)
    if ghosts:
        images = {}
        for e in np.flatnonzero(np.abs(shift).sum(1) > 1e-9):
            key = (int(sender[e]), *np.round(shift[e], 8))
            if key not in images:
                images[key] = n + len(images)
            sender_node[e] = images[key]
        owner = np.array([key[0] for key in images], dtype=np.int64)
    node_species = np.concatenate([species, species[owner]])
    node_attrs = torch.nn.functional.one_hot(torch.tensor(node_species), len(atomic_numbers))
    return {
        "node_attrs": node_attrs.to(dtype),
        "vectors": vectors.to(dtype),
        "edge_index": torch.tensor(np.stack([sender_node, receiver]), dtype=torch.long),
        "ghost_owner": torch.tensor(owner, dtype=torch.long),
        "sender_atom": torch.tensor(sender, dtype=torch.long),
        "receiver_atom": torch.tensor(receiver, dtype=torch.long),
    }


def evaluate_halo(module, atoms, atomic_numbers: list[int], r_max: float, dtype,
                  ghosts: bool) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Angstrom) of ``atoms`` from a halo module, via edge gradients."""
    inp = halo_inputs(atoms, atomic_numbers, r_max, dtype, ghosts)
    vectors = inp["vectors"].clone().requires_grad_(True)
    energy = module(inp["node_attrs"], vectors, inp["edge_index"], inp["ghost_owner"]).double().sum()
    (g,) = torch.autograd.grad(energy, vectors)
    g = g.double()
    forces = torch.zeros(len(atoms), 3, dtype=torch.float64)
    forces.index_add_(0, inp["receiver_atom"], -g).index_add_(0, inp["sender_atom"], g)
    return float(energy.detach()), forces.numpy()

