// Style header of the ML-IONMD package: registers pair_style mlip/torch in a
// LAMMPS built from source (LAMMPS's CMake lists pair_*.h files that mention
// PAIR_CLASS in style_pair.h). The class itself is in pair_mlip_torch.h, shared
// with the plugin build. Installed by lammps_plugin/static/install_package.py.
#ifdef PAIR_CLASS
// clang-format off
PairStyle(mlip/torch,PairMLIPTorch);
// clang-format on
#else
#include "pair_mlip_torch.h"
#endif
