// MACE halo back end: models exported by `ionmd export --halo`.
//
// The graph's receivers are the rank's local atoms; senders are local atoms or
// ghosts. Edge vectors x[receiver] - x[sender] are computed here in float64 from
// LAMMPS coordinates, so periodic images need no shift vectors. Three graphs:
//   fold  (one rank)   nodes = local atoms, senders folded onto their owners;
//   halo  (any ranks)  nodes = local atoms + the ghosts within r_max of them,
//                      ghost features filled by ionmd::halo_exchange between layers;
//   shell (any ranks)  nodes = local atoms + ghosts of num_layers x r_max, edges
//                      centred on ghosts too, no exchange.
// Energy is summed over local atoms. With g = dE/dv for each edge v = x_r - x_s,
// the receiver gets force -g and the sender +g (ghost forces go home through
// LAMMPS's reverse communication); the virial is -sum v (x) g, split evenly
// between the two atoms of each edge for the per-atom virial.
#include "model_backends.h"

#include <regex>

namespace ionmd {

namespace {

int halo_width_of(const std::string &metadata)
{
  std::smatch m;
  std::regex key(R"re("halo_width"\s*:\s*([0-9]+))re");
  if (!std::regex_search(metadata, m, key))
    throw ModelError("halo model without \"halo_width\" in its ionmd.json metadata; re-export it with "
                     "`ionmd export --halo`");
  return std::stoi(m[1]);
}

// Per-edge outer products v (x) g in LAMMPS order xx yy zz xy xz yz: [E, 6].
torch::Tensor edge_voigt(const torch::Tensor &v, const torch::Tensor &g)
{
  using torch::indexing::Slice;
  auto vx = v.index({Slice(), 0}), vy = v.index({Slice(), 1}), vz = v.index({Slice(), 2});
  auto gx = g.index({Slice(), 0}), gy = g.index({Slice(), 1}), gz = g.index({Slice(), 2});
  return torch::stack({vx * gx, vy * gy, vz * gz, 0.5 * (vx * gy + vy * gx), 0.5 * (vx * gz + vz * gx),
                       0.5 * (vy * gz + vz * gy)}, 1);
}

}    // namespace

HaloMaceBackend::HaloMaceBackend(torch::jit::Module module, const std::string &path,
                                 const torch::Device &device, const std::string &metadata) :
    module_(std::move(module)), device_(device)
{
  info_ = mace_info(module_, path, metadata);
  info_.atom_virial = true;
  info_.halo = true;
  info_.halo_width = halo_width_of(metadata);
  nspecies_ = static_cast<int64_t>(info_.species.size());
}

HaloGraph halo_graph(const AtomicSystem &s)
{
  HaloGraph h;
  // Edges: receiver = centre atom, sender = neighbor (LAMMPS indices).
  h.nedges = s.folded || s.halo ? s.npairs_local : s.pair_i.size(0);
  h.receiver = s.pair_i.narrow(0, 0, h.nedges);
  h.sender = s.pair_j.narrow(0, 0, h.nedges);
  // Nodes: fold = local atoms; shell = all atoms; halo = local atoms + the ghosts that
  // send messages (ghost_atom lists their LAMMPS indices, in node order).
  torch::Tensor sender_node;
  if (s.folded) {
    sender_node = s.owner.index_select(0, h.sender);
    h.node_species = s.species.narrow(0, 0, s.nlocal);
    h.ghost_atom = torch::zeros({0}, torch::kInt64);
  } else if (s.halo) {
    auto is_ghost = h.sender >= s.nlocal;
    auto unique = torch::_unique(h.sender.masked_select(is_ghost), true, true);
    h.ghost_atom = std::get<0>(unique);
    sender_node = h.sender.masked_scatter(is_ghost, std::get<1>(unique) + s.nlocal);
    h.node_species = torch::cat({s.species.narrow(0, 0, s.nlocal), s.species.index_select(0, h.ghost_atom)});
  } else {
    sender_node = h.sender;
    h.node_species = s.species;
    h.ghost_atom = torch::zeros({0}, torch::kInt64);
  }
  h.vectors = s.positions.index_select(0, h.receiver) - s.positions.index_select(0, h.sender);
  h.edge_index = torch::stack({sender_node, h.receiver});
  return h;
}

Evaluation halo_scatter(const AtomicSystem &s, const HaloGraph &h, const torch::Tensor &local_energy,
                        const torch::Tensor &edge_grad, const EvalRequest &req)
{
  const auto cpu64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
  auto g = edge_grad.defined() ? edge_grad.to(cpu64) : torch::zeros({h.nedges, 3}, cpu64);
  Evaluation ev;
  ev.energy = local_energy.to(cpu64).sum();
  ev.forces = torch::zeros({s.nall, 3}, cpu64).index_add_(0, h.receiver, -g).index_add_(0, h.sender, g);
  if (req.atom_energy) ev.atom_energy = local_energy.to(cpu64);
  if (req.virial || req.atom_virial) {
    auto w = -edge_voigt(h.vectors, g);    // [E, 6] eV
    if (req.virial) ev.virial = w.sum(0);
    if (req.atom_virial) {
      auto half = 0.5 * w;
      ev.atom_virial = torch::zeros({s.nall, 6}, cpu64).index_add_(0, h.receiver, half).index_add_(0, h.sender, half);
    }
  }
  return ev;
}

Evaluation HaloMaceBackend::evaluate(const AtomicSystem &s, const EvalRequest &req)
{
  const auto fopt = torch::TensorOptions().dtype(info_.dtype).device(device_);
  const auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  const HaloGraph h = halo_graph(s);
  auto vectors = h.vectors.to(fopt).requires_grad_(true);
  auto node_attrs = torch::one_hot(h.node_species, nspecies_).to(fopt);
  auto node_energy = module_.forward({node_attrs, vectors, h.edge_index.to(iopt), h.ghost_atom.to(iopt)}).toTensor();
  auto local_energy = node_energy.narrow(0, 0, s.nlocal).to(torch::kFloat64);
  auto grads = torch::autograd::grad({local_energy.sum()}, {vectors}, {}, false, false, true);
  return halo_scatter(s, h, local_energy.detach(), grads[0], req);
}

}    // namespace ionmd
