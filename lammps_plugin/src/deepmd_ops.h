// ionmd's implementations of deepmd-kit's custom TorchScript ops (namespace deepmd::).
//
// A compressed DeePMD-kit .pth (dp --pt compress) calls deepmd::tabulate_fusion_*
// at every step. deepmd-kit's own op library is bound to one torch; these
// implementations, registered under the same schemas, let such models run in any
// torch ionmd is built against (CPU, float32 and float64).
#pragma once

#include <torch/library.h>

namespace ionmd {

// Registers deepmd::tabulate_fusion_se_a, _se_atten, _se_r, _se_t and _se_t_tebd
// (deepmd_tabulate_ops.cpp), each with its first derivative (autograd backward).
void define_deepmd_tabulate_ops(torch::Library &m);

}    // namespace ionmd
