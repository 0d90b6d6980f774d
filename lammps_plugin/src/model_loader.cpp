// Load a TorchScript file or an AOTInductor package, recognise its family, and
// read its metadata.
#include "abi_check.h"
#include "model_backends.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <dlfcn.h>
#include <fstream>
#include <regex>
#include <unordered_map>

namespace ionmd {

#ifdef IONMD_STATIC_PACKAGE
void register_deepmd_stub_ops();    // deepmd_stub_ops.cpp, same binary
#endif

namespace {

const char *const kElements[] = {
    "X",  "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si",
    "P",  "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu",
    "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru",
    "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr",
    "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",
    "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac",
    "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf",
    "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

std::string first_line(const std::string &text)
{
  auto begin = text.find_first_not_of(" \n\r\t");
  if (begin == std::string::npos) return "(no message)";
  auto end = text.find('\n', begin);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

#ifndef IONMD_STATIC_PACKAGE
std::string directory_of_this_library()
{
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&ensure_deepmd_ops), &info) == 0 || !info.dli_fname)
    return ".";
  std::string p = info.dli_fname;
  auto pos = p.find_last_of('/');
  return pos == std::string::npos ? "." : p.substr(0, pos);
}
#endif

bool deepmd_ops_registered()
{
  return c10::Dispatcher::singleton()
      .findSchema({"deepmd::tabulate_fusion_se_a", ""})
      .has_value();
}

// What kind of PyTorch zip archive a file is, from its records.
enum class Archive { TORCHSCRIPT, PT2, PICKLE, OTHER };

Archive archive_kind(const std::string &path)
{
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("archive_format") &&
        reader.getAllRecords().end() !=
            std::find_if(reader.getAllRecords().begin(), reader.getAllRecords().end(),
                         [](const std::string &r) { return r.rfind("data/aotinductor/", 0) == 0; }))
      return Archive::PT2;
    if (reader.hasRecord("constants.pkl")) return Archive::TORCHSCRIPT;
    if (reader.hasRecord("data.pkl")) return Archive::PICKLE;
  } catch (const std::exception &) {
    // Not a zip archive: let torch::jit::load report what it is.
  }
  return Archive::OTHER;
}

}    // namespace

std::string symbol_of(int z)
{
  if (z < 1 || z > 118) return "Z" + std::to_string(z);
  return kElements[z];
}

torch::Tensor voigt_from_matrix(const torch::Tensor &m)
{
  auto s = 0.5 * (m + m.transpose(0, 1));
  return torch::stack({s[0][0], s[1][1], s[2][2], s[0][1], s[0][2], s[1][2]});
}

torch::Dtype model_dtype(const torch::jit::Module &module, const std::string &metadata)
{
  std::smatch m;
  std::regex key(R"re("dtype"\s*:\s*"(float32|float64)")re");
  if (std::regex_search(metadata, m, key)) return m[1] == "float32" ? torch::kFloat32 : torch::kFloat64;
  for (const auto &p : module.parameters(true))
    if (p.is_floating_point()) return p.scalar_type();
  for (const auto &b : module.buffers(true))
    if (b.is_floating_point()) return b.scalar_type();
  return torch::kFloat64;
}

namespace {
std::string g_deepmd_ops;    // how deepmd-kit's ops were registered, once they were
}    // namespace

std::string deepmd_ops_source() { return g_deepmd_ops; }

std::string ensure_deepmd_ops()
{
  std::string &how = g_deepmd_ops;
  if (!how.empty()) return how;
  if (deepmd_ops_registered()) return how = "already registered in this process";
  // deepmd-kit's own op library, when it was built for the torch loaded here.
  std::vector<std::string> candidates;
  if (const char *env = std::getenv("IONMD_DEEPMD_OP_LIBRARY")) candidates.emplace_back(env);
  std::string torch_dir = loaded_torch_dir();
  if (!torch_dir.empty()) candidates.push_back(torch_dir + "/../deepmd/lib/libdeepmd_op_pt.so");
  for (const auto &lib : candidates) {
    std::ifstream probe(lib);
    if (!probe) continue;
    if (dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL) && deepmd_ops_registered())
      return how = "deepmd-kit op library " + lib;
  }
  // Stand-ins: same schemas, raise if ever executed (uncompressed models never call them).
#ifdef IONMD_STATIC_PACKAGE
  register_deepmd_stub_ops();    // compiled into this LAMMPS (ML-IONMD package)
  if (deepmd_ops_registered()) return how = "ionmd stand-in ops (compiled into this LAMMPS)";
  throw ModelError("cannot register deepmd-kit custom ops: the stand-ins compiled into this "
                   "LAMMPS did not register");
#else
  std::string stubs = directory_of_this_library() + "/libionmd_deepmd_stubs.so";
  if (dlopen(stubs.c_str(), RTLD_NOW | RTLD_GLOBAL) && deepmd_ops_registered())
    return how = "ionmd stand-in ops (" + stubs + ")";
  throw ModelError("cannot register deepmd-kit custom ops: neither deepmd-kit's op library "
                   "(for this torch) nor " + stubs + " could be loaded: " +
                   std::string(dlerror() ? dlerror() : "unknown dlopen error"));
#endif
}

std::unique_ptr<ModelBackend> load_model(const std::string &path, const torch::Device &device)
{
  if (!std::ifstream(path))
    throw ModelError("model file '" + path + "' does not exist or cannot be read");
  const Archive kind = archive_kind(path);
  if (kind == Archive::PT2) return load_pt2_model(path, device);
  if (kind == Archive::PICKLE)
    throw ModelError("'" + path + "' is a pickled PyTorch checkpoint (torch.save), not an exported "
                     "model: if this is a MACE training checkpoint, convert it with `ionmd export " +
                     path + " -o MODEL.pt` (or --format pt2); DeePMD-kit checkpoints too "
                     "(`ionmd export CHECKPOINT.pt -o MODEL.pth`)");
  std::unordered_map<std::string, std::string> extra{{"ionmd.json", ""}};
  torch::jit::Module module;
  bool tried_ops = false;
  while (true) {
    try {
      module = torch::jit::load(path, device, extra);
      break;
    } catch (const std::exception &e) {
      // c10::Error and torch::jit::ErrorReport both land here.
      const auto *c10e = dynamic_cast<const c10::Error *>(&e);
      std::string what = c10e ? c10e->what_without_backtrace() : e.what();
      if (!tried_ops && what.find("deepmd::") != std::string::npos) {
        ensure_deepmd_ops();
        tried_ops = true;
        continue;
      }
      throw ModelError("'" + path + "' is not a loadable TorchScript model: " + first_line(what));
    }
  }
  module.eval();
  if (module.find_method("forward_lower"))
    return std::make_unique<DeepmdBackend>(std::move(module), path, device);
  if (module.hasattr("halo_width") && module.hasattr("r_max") && module.hasattr("atomic_numbers"))
    return std::make_unique<HaloMaceBackend>(std::move(module), path, device, extra["ionmd.json"]);
  if (module.hasattr("r_max") && module.hasattr("atomic_numbers") &&
      module.hasattr("num_interactions"))
    return std::make_unique<MaceBackend>(std::move(module), path, device, extra["ionmd.json"]);
  throw ModelError("'" + path + "' is TorchScript but not a supported model family: expected a MACE "
                   "model exported by `ionmd export` (attributes r_max, num_interactions, "
                   "atomic_numbers) or a DeePMD-kit PyTorch frozen model (forward_lower)");
}

}    // namespace ionmd
