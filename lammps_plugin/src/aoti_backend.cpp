// AOTInductor back end: MACE packages written by `ionmd export --format pt2`.
//
// The package's graphs (python/ionmd/models/export_pt2.py) take
//   (positions [n,3], node_attrs [n,S], edge_index [2,E], shifts [E,3], energy_mask [n])
// and return
//   "model":        (node_energy [n], energy [] float64, forces [n,3], virial [3,3])
//   "model_forces": (node_energy [n], energy [] float64, forces [n,3])
// (interface pt2-mace-2; pt2-mace-1 packages hold "model" only). The forces-only
// graph runs on steps where LAMMPS asks for no virial. Both accept
// n >= ionmd.min_atoms and E >= ionmd.min_edges; smaller inputs are padded with
// a detached pair of dummy atoms whose energies are masked out.
#include "model_backends.h"

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <unordered_map>

namespace ionmd {

namespace {

using Metadata = std::unordered_map<std::string, std::string>;

std::string get_or(const Metadata &m, const std::string &key, const std::string &fallback)
{
  auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

std::string require(const Metadata &m, const std::string &key, const std::string &path)
{
  auto it = m.find(key);
  if (it == m.end())
    throw ModelError("'" + path + "' is an AOTInductor package without the ionmd metadata key '" +
                     key + "': export it with `ionmd export CHECKPOINT -o OUT.pt2 --format pt2`");
  return it->second;
}

std::vector<std::string> split(const std::string &text, char sep)
{
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string reexport_command(const Metadata &m, const std::string &path)
{
  return "ionmd export " + get_or(m, "ionmd.source", "CHECKPOINT.model") + " -o " + path +
         " --format pt2 --dtype " + get_or(m, "ionmd.dtype", "float64");
}

// The x86 instruction sets of AOTI_CPU_ISA ("AVX512 ...", "AVX2") that this CPU
// lacks; empty when it can run the package's kernels.
std::string missing_cpu_isa(const std::string &isa)
{
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (isa.find("AVX512") != std::string::npos &&
      !(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
    return "AVX512";
  if (isa.find("AVX2") != std::string::npos && !__builtin_cpu_supports("avx2")) return "AVX2";
#else
  (void) isa;
#endif
  return "";
}

using Loader = torch::inductor::AOTIModelPackageLoader;

// One graph of the package. The pair style calls it from one thread, so the
// runner skips AOTInductor's thread synchronisation (run_single_threaded).
std::unique_ptr<Loader> open_graph(const std::string &path, const std::string &name,
                                   const Metadata &meta)
{
  try {
    return std::make_unique<Loader>(path, name, /*run_single_threaded=*/true);
  } catch (const std::exception &e) {
    const auto *c10e = dynamic_cast<const c10::Error *>(&e);
    std::string what = c10e ? c10e->what_without_backtrace() : e.what();
    throw ModelError("'" + path + "': AOTInductor could not load the package's graph '" + name +
                     "' (" + what.substr(0, what.find('\n')) + "); re-export it here with `" +
                     reexport_command(meta, path) + "`");
  }
}

// The metadata every MACE package records (family, species, cutoff, layers, dtype,
// smallest input sizes).
class Pt2Backend : public ModelBackend {
 public:
  Pt2Backend(const std::string &path, const torch::Device &device, const Metadata &meta) :
      device_(device)
  {
    info_.path = path;
    info_.family = require(meta, "ionmd.family", path);
    if (info_.family != "mace")
      throw ModelError("'" + path + "': .pt2 packages of family '" + info_.family +
                       "' are not supported (only MACE)");
    info_.species = split(require(meta, "ionmd.species", path), ',');
    try {
      info_.cutoff = std::stod(require(meta, "ionmd.cutoff_A", path));
      info_.num_layers = std::stoi(require(meta, "ionmd.num_layers", path));
      min_atoms_ = std::stoll(get_or(meta, "ionmd.min_atoms", "2"));
      min_edges_ = std::stoll(get_or(meta, "ionmd.min_edges", "2"));
    } catch (const std::logic_error &) {
      throw ModelError("'" + path + "': unreadable number in its ionmd metadata (cutoff_A, "
                       "num_layers, min_atoms or min_edges)");
    }
    info_.message_passing = info_.num_layers > 1;
    const std::string dtype = require(meta, "ionmd.dtype", path);
    if (dtype != "float32" && dtype != "float64")
      throw ModelError("'" + path + "': metadata dtype '" + dtype + "' is not float32 or float64");
    info_.dtype = dtype == "float32" ? torch::kFloat32 : torch::kFloat64;
    nspecies_ = static_cast<int64_t>(info_.species.size());
  }

  double ghost_reach() const override { return info_.cutoff * info_.num_layers; }

 protected:
  torch::Device device_;
  int64_t nspecies_ = 0;
  int64_t min_atoms_ = 2;
  int64_t min_edges_ = 2;
};

class Pt2MaceBackend : public Pt2Backend {
 public:
  Pt2MaceBackend(const std::string &path, const torch::Device &device, const Metadata &meta,
                 const std::string &interface) :
      Pt2Backend(path, device, meta)
  {
    loader_ = open_graph(path, "model", meta);
    if (interface == "pt2-mace-2") forces_loader_ = open_graph(path, "model_forces", meta);
  }

  Evaluation evaluate(const AtomicSystem &s, const EvalRequest &req) override
  {
    if (req.atom_virial)
      throw ModelError("MACE models do not provide per-atom virials (compute stress/atom or "
                       "centroid/stress/atom); use a DeePMD model for per-atom stress");
    const auto fopt = torch::TensorOptions().dtype(info_.dtype).device(device_);
    const MaceGraph g = mace_graph(s);
    const int64_t n = g.n;
    const int64_t nedges = g.sender.size(0);
    auto positions = s.positions.narrow(0, 0, n);
    auto shifts = torch::matmul(g.unit_shifts, s.cell);
    auto node_attrs = torch::one_hot(s.species.narrow(0, 0, n), nspecies_).to(torch::kFloat64);
    auto edge_index = torch::stack({g.sender, g.receiver});
    auto mask = (torch::arange(n, torch::kInt64) < s.nlocal).to(torch::kFloat64);

    // Ranks with fewer atoms or edges than the package accepts: append two dummy
    // atoms joined by two edges. Nothing real connects to them and their energies
    // are masked out, so they change no real number.
    const bool pad = n < min_atoms_ || nedges < min_edges_;
    if (pad) {
      const int64_t extra = std::max<int64_t>(2, min_atoms_ - n);
      auto dummy = torch::zeros({extra, 3}, torch::kFloat64);
      dummy.select(1, 0).copy_(1.0e4 + 1.5 * torch::arange(extra, torch::kFloat64));
      positions = torch::cat({positions, dummy});
      auto dummy_attrs = torch::zeros({extra, nspecies_}, torch::kFloat64);
      dummy_attrs.select(1, 0).fill_(1.0);
      node_attrs = torch::cat({node_attrs, dummy_attrs});
      mask = torch::cat({mask, torch::zeros({extra}, torch::kFloat64)});
      const int64_t extra_edges = std::max<int64_t>(2, min_edges_ - nedges);
      auto k = torch::arange(extra_edges, torch::kInt64);
      auto dsend = n + k % extra;
      auto drecv = n + (k + 1) % extra;
      edge_index = torch::cat({edge_index, torch::stack({dsend, drecv})}, 1);
      shifts = torch::cat({shifts, torch::zeros({extra_edges, 3}, torch::kFloat64)});
    }

    std::vector<torch::Tensor> inputs{
        positions.to(fopt).contiguous(), node_attrs.to(fopt).contiguous(),
        edge_index.to(torch::TensorOptions().dtype(torch::kInt64).device(device_)).contiguous(),
        shifts.to(fopt).contiguous(), mask.to(fopt).contiguous()};
    // The forces-only graph when this step needs no virial (and the package has one).
    const bool full = req.virial || !forces_loader_;
    auto out = (full ? loader_ : forces_loader_)->run(inputs);
    const size_t expected = full ? 4 : 3;
    if (out.size() != expected)
      throw ModelError("'" + info_.path + "': the package's graph '" +
                       (full ? "model" : "model_forces") + "' returned " +
                       std::to_string(out.size()) + " outputs, expected " +
                       std::to_string(expected) + " (node energy, energy, forces" +
                       (full ? ", virial)" : ")"));

    Evaluation ev;
    const auto cpu64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
    ev.energy = out[1].to(cpu64).reshape({});
    ev.forces = out[2].narrow(0, 0, n).to(cpu64);
    if (req.atom_energy) ev.atom_energy = out[0].narrow(0, 0, s.nlocal).to(cpu64);
    if (req.virial) ev.virial = voigt_from_matrix(out[3].to(cpu64).view({3, 3}));
    return ev;
  }

 private:
  std::unique_ptr<Loader> loader_;           // "model": energy, forces, virial
  std::unique_ptr<Loader> forces_loader_;    // "model_forces" (pt2-mace-2), or null
};

// Halo packages (`ionmd export --halo --format pt2`, interface pt2-mace-halo-1):
//   "model": (node_attrs [N,S], vectors [E,3], edge_index [2,E], ghost_atom [G])
//              -> (local node energy [N-G], energy [] float64, dE/dvectors [E,3])
// with ionmd::halo_forward / halo_reverse between layers, which travel through
// LAMMPS communication while the pair style installs its HaloComm. The graph is
// the TorchScript halo module's (same nodes, edges and scatter: halo_graph,
// halo_scatter). N - G, G and E must be at least ionmd.min_local, min_ghosts and
// min_edges, so smaller graphs are padded (see evaluate); padding nodes touch no
// real node and their energies are not summed.
class Pt2HaloBackend : public Pt2Backend {
 public:
  Pt2HaloBackend(const std::string &path, const torch::Device &device, const Metadata &meta) :
      Pt2Backend(path, device, meta)
  {
    try {
      info_.halo_width = std::stoi(require(meta, "ionmd.halo_width", path));
      min_ghosts_ = std::stoll(get_or(meta, "ionmd.min_ghosts", "2"));
      min_local_ = std::stoll(get_or(meta, "ionmd.min_local", "2"));
    } catch (const std::logic_error &) {
      throw ModelError("'" + path + "': unreadable halo_width or min_ghosts in its ionmd metadata");
    }
    info_.halo = true;
    info_.atom_virial = true;
    loader_ = open_graph(path, "model", meta);
  }

  Evaluation evaluate(const AtomicSystem &s, const EvalRequest &req) override
  {
    const auto fopt = torch::TensorOptions().dtype(info_.dtype).device(device_);
    const auto iopt = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    const HaloGraph h = halo_graph(s);
    auto node_species = h.node_species;
    auto vectors = h.vectors;
    auto edge_index = h.edge_index;
    auto ghost_atom = h.ghost_atom;
    const int64_t n_ghost = ghost_atom.size(0);
    const int64_t n_loc = node_species.size(0) - n_ghost;    // the model's local nodes
    if (n_loc < min_local_ || n_ghost < min_ghosts_ || h.nedges < min_edges_) {
      // Padding: local nodes after the real ones, ghost nodes (ghost_atom -1) after the
      // real ghosts, and edges from padding ghosts to padding locals beyond the cutoff.
      const int64_t pl = std::max<int64_t>(2, min_local_ - n_loc);
      const int64_t pg = std::max<int64_t>(2, min_ghosts_ - n_ghost);
      const int64_t pe = std::max<int64_t>(2, min_edges_ - h.nedges);
      auto zeros = [](int64_t k) { return torch::zeros({k}, torch::kInt64); };
      node_species = torch::cat({node_species.narrow(0, 0, n_loc), zeros(pl),
                                 node_species.narrow(0, n_loc, n_ghost), zeros(pg)});
      ghost_atom = torch::cat({ghost_atom, torch::full({pg}, -1, torch::kInt64)});
      edge_index = torch::where(edge_index >= n_loc, edge_index + pl, edge_index);
      auto k = torch::arange(pe, torch::kInt64);
      edge_index = torch::cat({edge_index, torch::stack({n_loc + pl + n_ghost + k % pg, n_loc + k % pl})}, 1);
      auto far = torch::zeros({pe, 3}, torch::kFloat64);
      far.select(1, 0).fill_(2.0 * info_.cutoff + 1.0);
      vectors = torch::cat({vectors, far});
    }
    std::vector<torch::Tensor> inputs{
        torch::one_hot(node_species, nspecies_).to(fopt).contiguous(), vectors.to(fopt).contiguous(),
        edge_index.to(iopt).contiguous(), ghost_atom.to(iopt).contiguous()};
    auto out = loader_->run(inputs);
    if (out.size() != 3)
      throw ModelError("'" + info_.path + "': the halo package returned " + std::to_string(out.size()) +
                       " outputs, expected 3 (local node energy, energy, edge gradient)");
    const auto cpu64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
    auto local_energy = out[0].narrow(0, 0, s.nlocal).to(cpu64);
    return halo_scatter(s, h, local_energy, out[2].narrow(0, 0, h.nedges), req);
  }

 private:
  std::unique_ptr<Loader> loader_;
  int64_t min_ghosts_ = 2;
  int64_t min_local_ = 2;
};

}    // namespace

std::unique_ptr<ModelBackend> load_pt2_model(const std::string &path, const torch::Device &device)
{
  Metadata meta;
  try {
    meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path, "model");
  } catch (const std::exception &e) {
    const auto *c10e = dynamic_cast<const c10::Error *>(&e);
    std::string what = c10e ? c10e->what_without_backtrace() : e.what();
    throw ModelError("'" + path + "' is not a readable AOTInductor (.pt2) package: " +
                     what.substr(0, what.find('\n')));
  }
  // A package runs only with the torch and the device type it was compiled for.
  const std::string built_torch = get_or(meta, "ionmd.torch_version", "");
  const std::string built_device = get_or(meta, "ionmd.device_type", "");
  const std::string here_device = c10::DeviceTypeName(device.type(), true);
  if (built_torch.empty() || built_device.empty())
    throw ModelError("'" + path + "' records no torch version or device type (ionmd.torch_version, "
                     "ionmd.device_type); re-export it with `" + reexport_command(meta, path) + "`");
  if (built_torch != IONMD_TORCH_VERSION || built_device != here_device)
    throw ModelError("'" + path + "' was compiled for torch " + built_torch + " on " + built_device +
                     ", but this LAMMPS runs torch " + IONMD_TORCH_VERSION + " on " + here_device +
                     "; a .pt2 package runs only where it was compiled: re-export it here with `" +
                     reexport_command(meta, path) + "`");
  if (device.is_cpu()) {
    const std::string isa = get_or(meta, "AOTI_CPU_ISA", "");
    const std::string missing = missing_cpu_isa(isa);
    if (!missing.empty())
      throw ModelError("'" + path + "' was compiled for CPUs with " + isa + ", but this CPU has no " +
                       missing + "; re-export it here with `" + reexport_command(meta, path) + "`");
  }
  const std::string interface = get_or(meta, "ionmd.interface", "pt2-mace-1");
  if (interface == "pt2-mace-halo-1") return std::make_unique<Pt2HaloBackend>(path, device, meta);
  if (interface != "pt2-mace-1" && interface != "pt2-mace-2")
    throw ModelError("'" + path + "': unknown .pt2 interface '" + interface +
                     "' (this plugin reads pt2-mace-1, pt2-mace-2 and pt2-mace-halo-1); re-export "
                     "it with `" + reexport_command(meta, path) + "`");
  return std::make_unique<Pt2MaceBackend>(path, device, meta, interface);
}

}    // namespace ionmd
