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

Evaluation HaloMaceBackend::evaluate(const AtomicSystem &s, const EvalRequest &req)
{
  const auto fopt = torch::TensorOptions().dtype(info_.dtype).device(device_);
  const auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  const auto cpu64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);

  // Edges: receiver = centre atom, sender = neighbor (LAMMPS indices).
  const int64_t nedges = s.folded || s.halo ? s.npairs_local : s.pair_i.size(0);
  auto receiver = s.pair_i.narrow(0, 0, nedges);
  auto sender = s.pair_j.narrow(0, 0, nedges);
  // Nodes: fold = local atoms; shell = all atoms; halo = local atoms + the ghosts that
  // send messages (ghost_atom lists their LAMMPS indices, in node order).
  torch::Tensor sender_node, node_species, ghost_atom;
  if (s.folded) {
    sender_node = s.owner.index_select(0, sender);
    node_species = s.species.narrow(0, 0, s.nlocal);
    ghost_atom = torch::zeros({0}, torch::kInt64);
  } else if (s.halo) {
    auto is_ghost = sender >= s.nlocal;
    auto unique = torch::_unique(sender.masked_select(is_ghost), true, true);
    ghost_atom = std::get<0>(unique);
    sender_node = sender.masked_scatter(is_ghost, std::get<1>(unique) + s.nlocal);
    node_species = torch::cat({s.species.narrow(0, 0, s.nlocal), s.species.index_select(0, ghost_atom)});
  } else {
    sender_node = sender;
    node_species = s.species;
    ghost_atom = torch::zeros({0}, torch::kInt64);
  }

  auto v64 = s.positions.index_select(0, receiver) - s.positions.index_select(0, sender);
  auto vectors = v64.to(fopt).requires_grad_(true);
  auto node_attrs = torch::one_hot(node_species, nspecies_).to(fopt);
  auto edge_index = torch::stack({sender_node, receiver}).to(iopt);

  auto node_energy = module_.forward({node_attrs, vectors, edge_index, ghost_atom.to(iopt)}).toTensor();
  auto local_energy = node_energy.narrow(0, 0, s.nlocal).to(torch::kFloat64);
  auto energy = local_energy.sum();
  auto grads = torch::autograd::grad({energy}, {vectors}, {}, false, false, true);
  auto g = grads[0].defined() ? grads[0].to(cpu64) : torch::zeros({nedges, 3}, cpu64);

  Evaluation ev;
  ev.energy = energy.detach().to(cpu64);
  ev.forces = torch::zeros({s.nall, 3}, cpu64).index_add_(0, receiver, -g).index_add_(0, sender, g);
  if (req.atom_energy) ev.atom_energy = local_energy.detach().to(cpu64);
  if (req.virial || req.atom_virial) {
    auto w = -edge_voigt(v64, g);    // [E, 6] eV
    if (req.virial) ev.virial = w.sum(0);
    if (req.atom_virial) {
      auto half = 0.5 * w;
      ev.atom_virial = torch::zeros({s.nall, 6}, cpu64).index_add_(0, receiver, half).index_add_(0, sender, half);
    }
  }
  return ev;
}

}    // namespace ionmd
