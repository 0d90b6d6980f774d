// ABI guard: the plugin refuses to register in a LAMMPS or torch it was not
// compiled against, because C++ class layouts differ between releases and a
// mismatch fails silently (wrong member offsets), not loudly. Only the plugin
// entry (plugin_main.cpp) applies it: the static ML-IONMD package
// (lammps_plugin/static) links LAMMPS, torch and the pair style into one lmp.
#ifndef IONMD_ABI_CHECK_H
#define IONMD_ABI_CHECK_H

#include <string>

namespace ionmd {

struct BuildIdentity {
  long lammps_date;      // e.g. 20250722
  long lammps_update;    // e.g. 4; -1 when unknown
  std::string torch_version;  // full version string, e.g. "2.13.0+cpu"
};

// What this plugin was compiled against (from CMake definitions).
BuildIdentity built_identity();

// What the running process provides. `lmp` is the LAMMPS handle; only the
// stable C library interface and static functions are used to read it.
BuildIdentity runtime_identity(void *lmp);

// Empty when compatible; otherwise a message naming both sides and the fix.
std::string abi_mismatch_message(const BuildIdentity &built, const BuildIdentity &runtime);

// Directory of the libtorch that is actually loaded in this process.
std::string loaded_torch_dir();

}    // namespace ionmd

#endif
