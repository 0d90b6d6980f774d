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
                               const torch::Tensor &ghost_owner)
  {
    g_calls++;
    TORCH_CHECK(local.dim() == 2, "ionmd::halo_exchange: features must be [n_local, F]");
    ctx->save_for_backward({ghost_owner});
    HaloComm *comm = g_comm.load();
    if (comm == nullptr) {
      auto ghosts = local.index_select(0, ghost_owner.to(local.device()));
      return torch::cat({local, ghosts}, 0);
    }
    check_comm(comm, local.size(0));
    TORCH_CHECK(ghost_owner.size(0) == comm->nghost(), "ionmd::halo_exchange: the model has ",
                ghost_owner.size(0), " ghost nodes but the LAMMPS rank has ", comm->nghost(), " ghost atoms");
    auto rows = host_rows(local, comm->nlocal() + comm->nghost());
    comm->forward(rows);
    return rows.to(local.options());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads)
  {
    g_calls++;
    auto ghost_owner = ctx->get_saved_variables()[0];
    const auto &g = grads[0];
    HaloComm *comm = g_comm.load();
    torch::Tensor glocal;
    if (comm == nullptr) {
      const int64_t n_local = g.size(0) - ghost_owner.size(0);
      glocal = g.narrow(0, 0, n_local).index_add(0, ghost_owner.to(g.device()),
                                                 g.narrow(0, n_local, ghost_owner.size(0)));
    } else {
      auto rows = g.to(torch::kCPU, torch::kFloat64).contiguous().clone();
      comm->reverse(rows);
      glocal = rows.narrow(0, 0, comm->nlocal()).to(g.options());
    }
    return {glocal, torch::Tensor()};
  }
};

torch::Tensor halo_exchange(const torch::Tensor &local, const torch::Tensor &ghost_owner)
{
  return HaloExchange::apply(local, ghost_owner);
}

}    // namespace

HaloCommScope::HaloCommScope(HaloComm *comm) : previous_(g_comm.exchange(comm)) {}
HaloCommScope::~HaloCommScope() { g_comm.store(previous_); }
HaloComm *active_halo_comm() { return g_comm.load(); }
int64_t halo_exchange_calls() { return g_calls.load(); }

}    // namespace ionmd

TORCH_LIBRARY(ionmd, m)
{
  m.def("halo_exchange(Tensor local_feats, Tensor ghost_owner) -> Tensor", &ionmd::halo_exchange);
}
