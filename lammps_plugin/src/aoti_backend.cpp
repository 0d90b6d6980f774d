// AOTInductor back end: MACE packages written by `ionmd export --format pt2`.
//
// The package's graph (python/ionmd/models/export_pt2.py) is
//   (positions [n,3], node_attrs [n,S], edge_index [2,E], shifts [E,3], energy_mask [n])
//     -> (node_energy [n], energy [] float64, forces [n,3], virial [3,3])
// and accepts n >= ionmd.min_atoms and E >= ionmd.min_edges; smaller inputs are
// padded with a detached pair of dummy atoms whose energies are masked out.
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

class Pt2MaceBackend : public ModelBackend {
 public:
  Pt2MaceBackend(const std::string &path, const torch::Device &device, const Metadata &meta) :
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
    try {
      loader_ = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path, "model");
    } catch (const std::exception &e) {
      const auto *c10e = dynamic_cast<const c10::Error *>(&e);
      std::string what = c10e ? c10e->what_without_backtrace() : e.what();
      throw ModelError("'" + path + "': AOTInductor could not load the package (" +
                       what.substr(0, what.find('\n')) + "); re-export it here with `" +
                       reexport_command(meta, path) + "`");
    }
  }

  double ghost_reach() const override { return info_.cutoff * info_.num_layers; }

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
    auto out = loader_->run(inputs);
    if (out.size() != 4)
      throw ModelError("'" + info_.path + "': the package returned " + std::to_string(out.size()) +
                       " outputs, expected 4 (node energy, energy, forces, virial)");

    Evaluation ev;
    const auto cpu64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
    ev.energy = out[1].to(cpu64).reshape({});
    ev.forces = out[2].narrow(0, 0, n).to(cpu64);
    if (req.atom_energy) ev.atom_energy = out[0].narrow(0, 0, s.nlocal).to(cpu64);
    if (req.virial) ev.virial = voigt_from_matrix(out[3].to(cpu64).view({3, 3}));
    return ev;
  }

 private:
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
  torch::Device device_;
  int64_t nspecies_ = 0;
  int64_t min_atoms_ = 2;
  int64_t min_edges_ = 2;
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
  return std::make_unique<Pt2MaceBackend>(path, device, meta);
}

}    // namespace ionmd
