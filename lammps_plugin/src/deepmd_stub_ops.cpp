// Stand-ins for deepmd-kit's custom TorchScript ops.
//
// A DeePMD-kit .pth frozen with deepmd's op library loaded references these ops
// by name even when the model is uncompressed and never calls them, so
// torch::jit::load fails unless they are registered. deepmd-kit's own library is
// bound to the torch it was built for (2.11.0 for deepmd-kit 3.2.0); when it
// cannot be loaded, these stand-ins with identical schemas make loading work and
// raise a clear error if a model ever executes one of them.
#include <torch/library.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace {

[[noreturn]] void refuse(const char *op)
{
  TORCH_CHECK(false, "deepmd::", op,
              " was called, but only ionmd's stand-in is registered because deepmd-kit's op library "
              "for this torch could not be loaded. Compressed (tabulated) DeePMD models and "
              "multi-rank message passing need it: use an uncompressed model (dp --pt freeze without "
              "dp compress), or run in an environment whose torch matches deepmd-kit.");
}

using T = const at::Tensor &;

std::vector<at::Tensor> se_a(T, T, T, T, int64_t) { refuse("tabulate_fusion_se_a"); }
std::vector<at::Tensor> se_atten(T, T, T, T, T, int64_t, bool) { refuse("tabulate_fusion_se_atten"); }
std::vector<at::Tensor> se_r(T, T, T, int64_t) { refuse("tabulate_fusion_se_r"); }
std::vector<at::Tensor> se_t(T, T, T, T, int64_t) { refuse("tabulate_fusion_se_t"); }
std::vector<at::Tensor> se_t_tebd(T, T, T, T, int64_t) { refuse("tabulate_fusion_se_t_tebd"); }
std::vector<at::Tensor> border(T, T, T, T, T, T, T, T, T) { refuse("border_op"); }
at::Tensor border_backward(T, T, T, T, T, T, T, T, T) { refuse("border_op_backward"); }
at::Tensor enable_mpi() { refuse("enable_mpi"); }

void define_stubs(torch::Library &m)
{
  m.def("tabulate_fusion_se_a", &se_a);
  m.def("tabulate_fusion_se_atten", &se_atten);
  m.def("tabulate_fusion_se_r", &se_r);
  m.def("tabulate_fusion_se_t", &se_t);
  m.def("tabulate_fusion_se_t_tebd", &se_t_tebd);
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
