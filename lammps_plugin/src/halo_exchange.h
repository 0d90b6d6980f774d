// ionmd::halo_exchange, the TorchScript-visible op that message-passing models
// exported with `ionmd export --halo` call between interaction layers.
//
//   halo_exchange(Tensor local_feats [n_local, F], Tensor ghost_atom [n_ghost]) -> [n_local + n_ghost, F]
//
// Forward: ghost rows receive the features of the atoms they image. Backward:
// gradients on ghost rows are summed back onto those atoms. While a HaloComm is
// installed (the pair style does so around each model call), the copies travel
// through LAMMPS's forward and reverse communication, across MPI ranks and
// periodic images alike: ghost node g is LAMMPS atom ghost_atom[g] (an index
// >= nlocal; only ghosts that send messages need be nodes). Without one (Python,
// or a graph whose ghosts all image local atoms) ghost_atom[g] is the local row
// that ghost g images, and the exchange is an index copy.
//
// A negative ghost_atom marks a padding node that images no atom: its rows are
// zeros forward and its gradients are dropped.
//
// For graphs exported with torch.export / AOTInductor (`ionmd export --halo
// --format pt2`), the same exchange is also registered as two plain ops with CPU
// and Meta (shape) kernels and no C++ autograd, so that tracing keeps them as
// graph nodes:
//   halo_forward(Tensor local_feats [n_local, F], Tensor ghost_atom [n_ghost]) -> [n_local + n_ghost, F]
//   halo_reverse(Tensor grads [n_local + n_ghost, F], Tensor ghost_atom [n_ghost]) -> [n_local, F]
// ionmd.models.mace_halo links them for autograd (halo_reverse is halo_forward's backward).
//
// This library (libionmd_ops.so) does not depend on LAMMPS, so Python can load
// it to script and verify halo models (torch.ops.load_library).
#ifndef IONMD_HALO_EXCHANGE_H
#define IONMD_HALO_EXCHANGE_H

#include <torch/torch.h>

namespace ionmd {

// A rank's ghost-atom communication. Rows of `rows` are atoms in LAMMPS order
// (local atoms, then ghosts); the tensor is float64, contiguous, on the CPU.
class HaloComm {
 public:
  virtual ~HaloComm() = default;
  virtual int64_t nlocal() const = 0;
  virtual int64_t nghost() const = 0;
  // Overwrite ghost rows with their owners' rows.
  virtual void forward(torch::Tensor &rows) = 0;
  // Add ghost rows onto their owners' rows.
  virtual void reverse(torch::Tensor &rows) = 0;
};

// Install `comm` for the lifetime of the scope (nullptr: index-copy mode).
class HaloCommScope {
 public:
  explicit HaloCommScope(HaloComm *comm);
  ~HaloCommScope();
  HaloCommScope(const HaloCommScope &) = delete;
  HaloCommScope &operator=(const HaloCommScope &) = delete;

 private:
  HaloComm *previous_;
};

HaloComm *active_halo_comm();

// Number of halo_exchange calls since the library was loaded (for tests and profiles).
int64_t halo_exchange_calls();

}    // namespace ionmd

#endif
