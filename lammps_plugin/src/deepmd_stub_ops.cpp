// ionmd's registration of deepmd-kit's custom TorchScript ops (namespace deepmd::).
//
// A DeePMD-kit .pth frozen with deepmd's op library loaded references these ops
// by name even when the model is uncompressed and never calls them, so
// torch::jit::load fails unless they are registered. deepmd-kit's own library is
// bound to the torch it was built for (2.11.0 for deepmd-kit 3.2.0); when it
// cannot be loaded, ionmd registers the same schemas here:
// - the tabulated embedding ops of compressed models (tabulate_fusion_*) are real
//   implementations (deepmd_tabulate_ops.cpp);
// - border_op (multi-rank message passing of DPA-2/DPA-3) and enable_mpi are
//   stand-ins that raise a clear error if a model ever executes one of them.
#include "deepmd_ops.h"

#include <torch/library.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace {

[[noreturn]] void refuse(const char *op)
{
  TORCH_CHECK(false, "deepmd::", op,
              " was called, but only ionmd's stand-in is registered because deepmd-kit's op library "
              "for this torch could not be loaded. Message passing between MPI ranks (DPA-2/DPA-3 "
              "on several ranks) needs it: run such models on one rank, or in an environment whose "
              "torch matches deepmd-kit.");
}

using T = const at::Tensor &;

std::vector<at::Tensor> border(T, T, T, T, T, T, T, T, T) { refuse("border_op"); }
at::Tensor border_backward(T, T, T, T, T, T, T, T, T) { refuse("border_op_backward"); }
at::Tensor enable_mpi() { refuse("enable_mpi"); }

void define_stubs(torch::Library &m)
{
  ionmd::define_deepmd_tabulate_ops(m);
  m.def("border_op", &border);
  m.def("border_op_backward", &border_backward);
  m.def("enable_mpi", &enable_mpi);
}

}    // namespace

#ifdef IONMD_STATIC_PACKAGE
// Compiled into lmp (the ML-IONMD package): registered on demand by
// ensure_deepmd_ops(), so that deepmd-kit's own op library, which defines the
// same schemas, can still be loaded first.
namespace ionmd {
void register_deepmd_stub_ops()
{
  static const torch::Library lib = [] {
    torch::Library l(torch::Library::FRAGMENT, "deepmd", std::nullopt, __FILE__, __LINE__);
    define_stubs(l);
    return l;
  }();
}
}    // namespace ionmd
#else
// libionmd_deepmd_stubs.so: registered when the plugin dlopens it.
TORCH_LIBRARY_FRAGMENT(deepmd, m) { define_stubs(m); }
#endif
