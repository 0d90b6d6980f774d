// MACE back end: mace-torch's LAMMPS wrapper interface,
//   forward(data: Dict[str, Tensor], local_or_ghost: Tensor, compute_virials: bool)
// with buffers r_max, num_interactions and atomic_numbers.
#include "model_backends.h"

#include <regex>

namespace ionmd {

ModelInfo mace_info(const torch::jit::Module &module, const std::string &path, const std::string &metadata)
{
  ModelInfo info;
  info.path = path;
  info.family = "mace";
  info.cutoff = module.attr("r_max").toTensor().to(torch::kFloat64).item<double>();
  info.num_layers =
      static_cast<int>(module.attr("num_interactions").toTensor().to(torch::kInt64).item<int64_t>());
  info.message_passing = info.num_layers > 1;
  auto z = module.attr("atomic_numbers").toTensor().to(torch::kInt64).cpu();
  for (int64_t k = 0; k < z.size(0); k++) info.species.push_back(symbol_of(z[k].item<int>()));
  info.dtype = model_dtype(module, metadata);
  return info;
}

MaceGraph mace_graph(const AtomicSystem &s)
{
  // Edge (sender, receiver) carries the vector x[receiver] - x[sender] + shift,
  // with shift = unit_shift @ cell.
  MaceGraph g;
  if (s.folded) {
    // One rank: the graph is the periodic cell itself; ghosts become shifts.
    g.n = s.nlocal;
    g.sender = s.pair_i.narrow(0, 0, s.npairs_local);
    auto pj = s.pair_j.narrow(0, 0, s.npairs_local);
    g.receiver = s.owner.index_select(0, pj);
    auto offset = s.positions.index_select(0, pj) - s.positions.index_select(0, g.receiver);
    // Not rounded: shift @ cell is then the ghost's own offset, so edge vectors follow
    // ghost coordinates (fix numdiff/virial moves ghosts without straining the box).
    g.unit_shifts = torch::matmul(offset, torch::linalg_inv(s.cell));
  } else {
    // Ghost shell: ghosts are nodes at their real positions, edges carry no shift.
    g.n = s.nall;
    g.sender = s.pair_i;
    g.receiver = s.pair_j;
    g.unit_shifts = torch::zeros({s.pair_i.size(0), 3}, torch::kFloat64);
  }
  return g;
}

MaceBackend::MaceBackend(torch::jit::Module module, const std::string &path,
                         const torch::Device &device, const std::string &metadata) :
    module_(std::move(module)), device_(device)
{
  info_ = mace_info(module_, path, metadata);
  nspecies_ = static_cast<int64_t>(info_.species.size());
}

Evaluation MaceBackend::evaluate(const AtomicSystem &s, const EvalRequest &req)
{
  if (req.atom_virial)
    throw ModelError("MACE models do not provide per-atom virials (compute stress/atom or "
                     "centroid/stress/atom); use a DeePMD model for per-atom stress");
  const auto fopt = torch::TensorOptions().dtype(info_.dtype).device(device_);
  const auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(device_);

  const MaceGraph g = mace_graph(s);
  const int64_t n = g.n;
  const auto &sender = g.sender, &receiver = g.receiver, &unit_shifts = g.unit_shifts;
  auto cell = s.cell.to(fopt);
  auto ushift = unit_shifts.to(fopt);
  auto positions = s.positions.narrow(0, 0, n).to(fopt).clone();

  c10::Dict<std::string, torch::Tensor> data;
  data.insert("positions", positions);
  data.insert("cell", cell);
  data.insert("unit_shifts", ushift);
  data.insert("shifts", torch::matmul(ushift, cell));
  data.insert("edge_index", torch::stack({sender, receiver}).to(iopt));
  data.insert("node_attrs",
              torch::one_hot(s.species.narrow(0, 0, n), nspecies_).to(fopt));
  data.insert("batch", torch::zeros({n}, iopt));
  data.insert("ptr", torch::tensor({int64_t(0), n}, iopt));
  data.insert("weight", torch::ones({1}, fopt));
  auto local_or_ghost = (torch::arange(n, iopt) < s.nlocal).to(fopt);

  auto out = module_.forward({data, local_or_ghost, req.virial}).toGenericDict();
  auto get = [&](const char *key) {
    auto v = out.at(key);
    if (v.isNone()) throw ModelError(std::string("MACE model returned no '") + key + "'");
    return v.toTensor();
  };

  Evaluation ev;
  const auto cpu64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
  ev.energy = get("total_energy_local").to(cpu64).sum();
  ev.forces = get("forces").to(cpu64);
  if (req.atom_energy) ev.atom_energy = get("node_energy").narrow(0, 0, s.nlocal).to(cpu64);
  if (req.virial) ev.virial = voigt_from_matrix(get("virials").to(cpu64).view({3, 3}));
  return ev;
}

}    // namespace ionmd
