#include "abi_check.h"

#include "lammps.h"
#include "library.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>
#include <fstream>
#include <regex>
#include <sstream>

#ifndef IONMD_LAMMPS_DATE
#error "IONMD_LAMMPS_DATE must be defined by the build"
#endif

namespace ionmd {

namespace {

std::string dirname(const std::string &path)
{
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? std::string(".") : path.substr(0, pos);
}

// torch/version.py (pip torch) or build-version (libtorch archive), next to lib/.
std::string torch_version_in(const std::string &torch_root)
{
  std::ifstream py(torch_root + "/version.py");
  std::string line;
  std::regex assign(R"(^__version__\s*=\s*['"]([^'"]+)['"])");
  std::smatch m;
  while (py && std::getline(py, line))
    if (std::regex_search(line, m, assign)) return m[1];
  std::ifstream bv(torch_root + "/build-version");
  if (bv && std::getline(bv, line) && !line.empty()) return line;
  return "unknown";
}

}    // namespace

BuildIdentity built_identity()
{
  return {IONMD_LAMMPS_DATE, IONMD_LAMMPS_UPDATE, IONMD_TORCH_VERSION};
}

std::string loaded_torch_dir()
{
  Dl_info info;
  auto addr = reinterpret_cast<void *>(&at::set_num_threads);
  if (dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return "";
  return dirname(dirname(info.dli_fname));    // .../torch/lib/libtorch_cpu.so -> .../torch
}

BuildIdentity runtime_identity(void *lmp)
{
  BuildIdentity id{0, -1, "unknown"};
  id.lammps_date = lammps_version(lmp);
  if (LAMMPS_NS::LAMMPS::has_git_info()) {
    std::smatch m;
    std::string desc = LAMMPS_NS::LAMMPS::git_descriptor();
    std::regex upd(R"(update(\d+))");
    if (std::regex_search(desc, m, upd))
      id.lammps_update = std::stol(m[1]);
    else if (desc.rfind("stable_", 0) == 0 || desc.rfind("patch_", 0) == 0)
      id.lammps_update = 0;
  }
  std::string dir = loaded_torch_dir();
  if (!dir.empty()) id.torch_version = torch_version_in(dir);
  return id;
}

std::string abi_mismatch_message(const BuildIdentity &built, const BuildIdentity &runtime)
{
  bool lammps_ok = built.lammps_date == runtime.lammps_date &&
      (runtime.lammps_update < 0 || built.lammps_update < 0 ||
       built.lammps_update == runtime.lammps_update);
  bool torch_ok = built.torch_version == runtime.torch_version;
  if (lammps_ok && torch_ok) return "";
  auto lmp_str = [](const BuildIdentity &id) {
    std::ostringstream s;
    s << id.lammps_date;
    if (id.lammps_update >= 0) s << " update " << id.lammps_update;
    return s.str();
  };
  std::ostringstream msg;
  msg << "ionmd: refusing to load pair_style mlip/torch: it was built for LAMMPS "
      << lmp_str(built) << " and torch " << built.torch_version
      << ", but this process runs LAMMPS " << lmp_str(runtime) << " and torch "
      << runtime.torch_version << ". C++ plugins are bound to the exact LAMMPS and torch "
      << "they were compiled against. Rebuild it in this environment: "
      << "pip install --no-build-isolation --force-reinstall --no-deps <ionmd source dir> "
      << "(stand-alone LAMMPS: cmake -S <ionmd source dir> -B build -DLAMMPS_DIR=<LAMMPS "
         "prefix>/lib/cmake/LAMMPS && cmake --build build && cmake --install build).";
  return msg.str();
}

}    // namespace ionmd

// C entry point so the message logic can be tested from Python (ctypes).
extern "C" int ionmd_abi_message(long b_date, long b_update, const char *b_torch, long r_date,
                                 long r_update, const char *r_torch, char *out, int outlen)
{
  std::string msg = ionmd::abi_mismatch_message({b_date, b_update, b_torch},
                                                {r_date, r_update, r_torch});
  if (out && outlen > 0) {
    std::snprintf(out, outlen, "%s", msg.c_str());
  }
  return msg.empty() ? 0 : 1;
}
