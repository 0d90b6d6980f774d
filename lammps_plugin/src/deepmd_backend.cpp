// DeePMD-kit (PyTorch back end) frozen models, called through
//   forward_lower(extended_coord, extended_atype, nlist, mapping, fparam, aparam,
//                 do_atomic_virial, comm_dict)
// with ghosts as extended atoms and a -1 padded neighbor list of local atoms.
#include "model_backends.h"

namespace ionmd {

namespace {

bool has_method(const torch::jit::Module &m, const char *name)
{
  return m.find_method(name).has_value();
}

}    // namespace

DeepmdBackend::DeepmdBackend(torch::jit::Module module, const std::string &path,
                             const torch::Device &device) :
    module_(std::move(module)), device_(device)
{
  info_.path = path;
  info_.family = "deepmd";
  for (const auto &name : {"get_type_map", "get_rcut"})
    if (!has_method(module_, name))
      throw ModelError("'" + path + "' has forward_lower but no " + name +
                       "(): not a DeePMD-kit PyTorch model this plugin understands");
  auto type_map = module_.run_method("get_type_map").toList();
  for (const auto &t : type_map) info_.species.push_back(t.get().toStringRef());
  info_.cutoff = module_.run_method("get_rcut").toDouble();
  if (has_method(module_, "has_message_passing"))
    info_.message_passing = module_.run_method("has_message_passing").toBool();
  info_.num_layers = 1;
  // deepmd sorts the list by distance and splits it by type (format_nlist) only
  // when it is wider than sum(sel); a narrower list is taken as already formatted.
  // Always hand it a wider one, so the list is formatted the same on every rank.
  if (has_method(module_, "get_nnei")) nnei_ = module_.run_method("get_nnei").toInt();
  for (const auto &name : {"get_dim_fparam", "get_dim_aparam"})
    if (has_method(module_, name) && module_.run_method(name).toInt() > 0)
      throw ModelError("'" + path + "' needs frame or atomic parameters (" + name +
                       " > 0), which pair_style mlip/torch does not supply");
  info_.dtype = torch::kFloat64;    // DeePMD casts inputs to its own precision itself
  info_.atom_virial = true;
}

Evaluation DeepmdBackend::evaluate(const AtomicSystem &s, const EvalRequest &req)
{
  const int64_t nloc = s.nlocal, nall = s.nall, np = s.npairs_local;
  const auto iopt = torch::TensorOptions().dtype(torch::kInt64);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

  // Padded neighbor list: pairs arrive grouped by centre atom, in list order.
  auto pi = s.pair_i.narrow(0, 0, np), pj = s.pair_j.narrow(0, 0, np);
  auto counts = torch::bincount(pi, {}, nloc);
  const int64_t width = std::max<int64_t>(nnei_ + 1, np ? counts.max().item<int64_t>() : 1);
  auto start = torch::cumsum(counts, 0) - counts;
  auto column = torch::arange(np, iopt) - start.index_select(0, pi);
  auto nlist = torch::full({nloc, width}, -1, iopt);
  nlist.index_put_({pi, column}, pj);

  std::vector<c10::IValue> args;
  args.emplace_back(s.positions.reshape({1, nall * 3}).to(device_));
  args.emplace_back(s.species.reshape({1, nall}).to(device_));
  args.emplace_back(nlist.unsqueeze(0).to(device_));
  if (s.folded)
    args.emplace_back(s.owner.reshape({1, nall}).to(device_));
  else
    args.emplace_back(c10::IValue());
  args.emplace_back(c10::IValue());    // fparam
  args.emplace_back(c10::IValue());    // aparam
  args.emplace_back(req.atom_virial);
  args.emplace_back(c10::IValue());    // comm_dict: only for message passing across ranks
  auto out = module_.get_method("forward_lower")(args).toGenericDict();
  auto get = [&](const char *key) {
    if (!out.contains(key) || out.at(key).isNone())
      throw ModelError(std::string("DeePMD model returned no '") + key + "'");
    return out.at(key).toTensor().to(f64.device(torch::kCPU));
  };

  Evaluation ev;
  ev.energy = get("energy").sum();
  ev.forces = get("extended_force").view({nall, 3});
  if (req.virial) ev.virial = voigt_from_matrix(get("virial").view({3, 3}));
  if (req.atom_energy) ev.atom_energy = get("atom_energy").view({nloc});
  if (req.atom_virial) {
    auto v = get("extended_virial").view({nall, 3, 3});
    auto sym = 0.5 * (v + v.transpose(1, 2));
    ev.atom_virial = torch::stack({sym.select(1, 0).select(1, 0), sym.select(1, 1).select(1, 1),
                                   sym.select(1, 2).select(1, 2), sym.select(1, 0).select(1, 1),
                                   sym.select(1, 0).select(1, 2), sym.select(1, 1).select(1, 2)},
                                  1);
  }
  return ev;
}

}    // namespace ionmd
