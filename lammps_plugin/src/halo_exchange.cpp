#include "halo_exchange.h"

#include <torch/library.h>

#include <atomic>

namespace ionmd {

namespace {

// Process-wide, not thread-local: autograd may run backward on another thread.
std::atomic<HaloComm *> g_comm{nullptr};
std::atomic<int64_t> g_calls{0};

// The first `nlocal` rows of `t` in a float64 array of `rows` rows (ghost rows zero).
torch::Tensor host_rows(const torch::Tensor &t, int64_t nlocal, int64_t rows)
{
  auto out = torch::zeros({rows, t.size(1)}, torch::TensorOptions().dtype(torch::kFloat64));
  out.narrow(0, 0, nlocal).copy_(t.narrow(0, 0, nlocal));
  return out;
}

// Exported graphs may carry padding local nodes after the rank's atoms (their
// features are not communicated); TorchScript graphs have exactly nlocal.
void check_comm(HaloComm *comm, int64_t n_local)
{
  TORCH_CHECK(comm->nlocal() <= n_local, "ionmd::halo_exchange: the model has ", n_local,
              " local nodes but the LAMMPS rank owns ", comm->nlocal(), " atoms");
}

// Rows of `source` for each ghost node; a negative ghost_atom (a padding node
// that images no atom) gets a row of zeros.
torch::Tensor ghost_rows(const torch::Tensor &source, const torch::Tensor &ghost_atom)
{
  auto index = ghost_atom.to(source.device());
  if (index.numel() == 0 || index.min().item<int64_t>() >= 0) return source.index_select(0, index);
  auto padded = torch::cat({source, torch::zeros({1, source.size(1)}, source.options())}, 0);
  return padded.index_select(0, torch::where(index < 0, source.size(0), index));
}

// Forward: [n_local, F] -> [n_local + n_ghost, F], ghost rows copied from their owners.
torch::Tensor exchange_forward(const torch::Tensor &local, const torch::Tensor &ghost_atom)
{
  g_calls++;
  TORCH_CHECK(local.dim() == 2, "ionmd::halo_exchange: features must be [n_local, F]");
  HaloComm *comm = g_comm.load();
  if (comm == nullptr) return torch::cat({local, ghost_rows(local, ghost_atom)}, 0);
  check_comm(comm, local.size(0));
  auto rows = host_rows(local, comm->nlocal(), comm->nlocal() + comm->nghost());
  comm->forward(rows);
  return torch::cat({local, ghost_rows(rows, ghost_atom).to(local.options())}, 0);
}

// Reverse: gradients [n_local + n_ghost, F] -> [n_local, F], ghost rows added onto their owners.
torch::Tensor exchange_reverse(const torch::Tensor &g, const torch::Tensor &ghost_atom)
{
  g_calls++;
  TORCH_CHECK(g.dim() == 2, "ionmd::halo_reverse: gradients must be [n_local + n_ghost, F]");
  const int64_t n_local = g.size(0) - ghost_atom.size(0);
  auto g_local = g.narrow(0, 0, n_local);
  auto g_ghost = g.narrow(0, n_local, ghost_atom.size(0));
  auto index = ghost_atom.to(torch::kCPU);
  if (index.numel() > 0 && index.min().item<int64_t>() < 0) {    // padding nodes: dropped
    auto keep = torch::nonzero(index >= 0).flatten();
    index = index.index_select(0, keep);
    g_ghost = g_ghost.index_select(0, keep.to(g.device()));
  }
  HaloComm *comm = g_comm.load();
  if (comm == nullptr) return g_local.index_add(0, index.to(g.device()), g_ghost);
  check_comm(comm, n_local);
  const int64_t nlocal = comm->nlocal();
  auto rows = host_rows(g_local, nlocal, nlocal + comm->nghost());
  rows.index_add_(0, index, g_ghost.to(torch::kCPU, torch::kFloat64));
  comm->reverse(rows);
  auto out = g_local.clone();    // padding local nodes keep their own gradients
  out.narrow(0, 0, nlocal).copy_(rows.narrow(0, 0, nlocal));
  return out;
}

// The TorchScript op: one autograd Function around the forward and reverse exchange.
class HaloExchange : public torch::autograd::Function<HaloExchange> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext *ctx, const torch::Tensor &local,
                               const torch::Tensor &ghost_atom)
  {
    ctx->save_for_backward({ghost_atom});
    return exchange_forward(local, ghost_atom);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads)
  {
    auto ghost_atom = ctx->get_saved_variables()[0];
    return {exchange_reverse(grads[0], ghost_atom), torch::Tensor()};
  }
};

// Shapes only, for tracing (torch.export / AOTInductor) with symbolic sizes.
torch::Tensor halo_forward_meta(const torch::Tensor &local, const torch::Tensor &ghost_atom)
{
  return at::empty_symint({local.sym_size(0) + ghost_atom.sym_size(0), local.sym_size(1)},
                          local.options());
}

torch::Tensor halo_reverse_meta(const torch::Tensor &g, const torch::Tensor &ghost_atom)
{
  return at::empty_symint({g.sym_size(0) - ghost_atom.sym_size(0), g.sym_size(1)}, g.options());
}

torch::Tensor halo_exchange(const torch::Tensor &local, const torch::Tensor &ghost_atom)
{
  return HaloExchange::apply(local, ghost_atom);
}

}    // namespace

HaloCommScope::HaloCommScope(HaloComm *comm) : previous_(g_comm.exchange(comm)) {}
HaloCommScope::~HaloCommScope() { g_comm.store(previous_); }
HaloComm *active_halo_comm() { return g_comm.load(); }
int64_t halo_exchange_calls() { return g_calls.load(); }

}    // namespace ionmd

TORCH_LIBRARY(ionmd, m)
{
  m.def("halo_exchange(Tensor local_feats, Tensor ghost_atom) -> Tensor", &ionmd::halo_exchange);
  // The same exchange as two plain ops (no autograd in C++) for exported graphs:
  // tracing keeps them as graph nodes (ionmd.models.mace_halo links them for
  // autograd in Python), and AOTInductor calls their CPU kernels at run time.
  m.def("halo_forward(Tensor local_feats, Tensor ghost_atom) -> Tensor");
  m.def("halo_reverse(Tensor grads, Tensor ghost_atom) -> Tensor");
}

TORCH_LIBRARY_IMPL(ionmd, CPU, m)
{
  m.impl("halo_forward", &ionmd::exchange_forward);
  m.impl("halo_reverse", &ionmd::exchange_reverse);
}

TORCH_LIBRARY_IMPL(ionmd, Meta, m)
{
  m.impl("halo_forward", &ionmd::halo_forward_meta);
  m.impl("halo_reverse", &ionmd::halo_reverse_meta);
}
