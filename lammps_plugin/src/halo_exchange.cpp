#include "halo_exchange.h"

#include <torch/library.h>

#include <atomic>

namespace ionmd {

namespace {

// Process-wide, not thread-local: autograd may run backward on another thread.
std::atomic<HaloComm *> g_comm{nullptr};
std::atomic<int64_t> g_calls{0};

torch::Tensor host_rows(const torch::Tensor &t, int64_t rows)
{
  auto out = torch::zeros({rows, t.size(1)}, torch::TensorOptions().dtype(torch::kFloat64));
  out.narrow(0, 0, t.size(0)).copy_(t);
  return out;
}

void check_comm(HaloComm *comm, int64_t n_local)
{
  TORCH_CHECK(comm->nlocal() == n_local, "ionmd::halo_exchange: the model has ", n_local,
              " local nodes but the LAMMPS rank owns ", comm->nlocal(), " atoms");
}

class HaloExchange : public torch::autograd::Function<HaloExchange> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext *ctx, const torch::Tensor &local,
                               const torch::Tensor &ghost_atom)
  {
    g_calls++;
    TORCH_CHECK(local.dim() == 2, "ionmd::halo_exchange: features must be [n_local, F]");
    ctx->save_for_backward({ghost_atom});
    HaloComm *comm = g_comm.load();
    if (comm == nullptr) {
      auto ghosts = local.index_select(0, ghost_atom.to(local.device()));
      return torch::cat({local, ghosts}, 0);
    }
    check_comm(comm, local.size(0));
    auto rows = host_rows(local, comm->nlocal() + comm->nghost());
    comm->forward(rows);
    auto ghosts = rows.index_select(0, ghost_atom.to(torch::kCPU));
    return torch::cat({local, ghosts.to(local.options())}, 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads)
  {
    g_calls++;
    auto ghost_atom = ctx->get_saved_variables()[0];
    const auto &g = grads[0];
    const int64_t n_local = g.size(0) - ghost_atom.size(0);
    auto g_local = g.narrow(0, 0, n_local);
    auto g_ghost = g.narrow(0, n_local, ghost_atom.size(0));
    HaloComm *comm = g_comm.load();
    if (comm == nullptr)
      return {g_local.index_add(0, ghost_atom.to(g.device()), g_ghost), torch::Tensor()};
    auto rows = torch::zeros({comm->nlocal() + comm->nghost(), g.size(1)},
                             torch::TensorOptions().dtype(torch::kFloat64));
    rows.narrow(0, 0, n_local).copy_(g_local);
    rows.index_add_(0, ghost_atom.to(torch::kCPU), g_ghost.to(torch::kCPU, torch::kFloat64));
    comm->reverse(rows);
    return {rows.narrow(0, 0, n_local).to(g.options()), torch::Tensor()};
  }
};

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
}
