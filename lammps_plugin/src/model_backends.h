// Concrete back ends (internal header).
#ifndef IONMD_MODEL_BACKENDS_H
#define IONMD_MODEL_BACKENDS_H

#include "model_backend.h"

namespace ionmd {

// [3,3] -> [6] in LAMMPS order xx yy zz xy xz yz (symmetrised off-diagonals).
torch::Tensor voigt_from_matrix(const torch::Tensor &m);

// Metadata of a MACE TorchScript module (buffers r_max, num_interactions, atomic_numbers).
ModelInfo mace_info(const torch::jit::Module &module, const std::string &path, const std::string &metadata);

// Floating dtype of a module: "dtype" in its ionmd.json metadata, else its first
// floating parameter or buffer.
torch::Dtype model_dtype(const torch::jit::Module &module, const std::string &metadata);

// The graph a MACE model sees: nodes [0, n) of the system (local atoms when
// folded, all atoms otherwise) and edges sender -> receiver with unit shifts.
struct MaceGraph {
  int64_t n = 0;
  torch::Tensor sender, receiver;    // [E] int64
  torch::Tensor unit_shifts;         // [E, 3] float64, in cell vectors
};
MaceGraph mace_graph(const AtomicSystem &sys);

class MaceBackend : public ModelBackend {
 public:
  MaceBackend(torch::jit::Module module, const std::string &path, const torch::Device &device,
              const std::string &metadata);
  double ghost_reach() const override { return info_.cutoff * info_.num_layers; }
  Evaluation evaluate(const AtomicSystem &sys, const EvalRequest &req) override;

 private:
  torch::jit::Module module_;
  torch::Device device_;
  int64_t nspecies_ = 0;
};

// MACE exported by `ionmd export --halo`: forward(node_attrs, vectors, edge_index,
// ghost_owner) -> local node energies, with ionmd::halo_exchange between layers.
// Forces, virials and per-atom virials come from the gradient on edge vectors.
class HaloMaceBackend : public ModelBackend {
 public:
  HaloMaceBackend(torch::jit::Module module, const std::string &path, const torch::Device &device,
                  const std::string &metadata);
  double ghost_reach() const override { return info_.cutoff * info_.num_layers; }
  Evaluation evaluate(const AtomicSystem &sys, const EvalRequest &req) override;

 private:
  torch::jit::Module module_;
  torch::Device device_;
  int64_t nspecies_ = 0;
};

// The graph of a halo-exported model (mace_halo_backend.cpp): fold, halo or shell.
struct HaloGraph {
  int64_t nedges = 0;
  torch::Tensor receiver, sender;    // [E] int64 LAMMPS indices (centre atom, neighbor)
  torch::Tensor edge_index;          // [2, E] int64 node indices (sender, receiver)
  torch::Tensor node_species;        // [N] int64 (local nodes, then ghost nodes)
  torch::Tensor ghost_atom;          // [G] int64 LAMMPS index of each ghost node
  torch::Tensor vectors;             // [E, 3] float64 x[receiver] - x[sender], Angstrom
};
HaloGraph halo_graph(const AtomicSystem &sys);

// Energy, forces and virials from the local node energies ([nlocal]) and the
// energy's gradient on each edge vector ([E, 3]; undefined = no edges).
Evaluation halo_scatter(const AtomicSystem &sys, const HaloGraph &graph, const torch::Tensor &local_energy,
                        const torch::Tensor &edge_grad, const EvalRequest &req);

// MACE compiled by `ionmd export --format pt2` (AOTInductor package): the graph
// computes node energies, the float64 energy, forces and the virial itself.
std::unique_ptr<ModelBackend> load_pt2_model(const std::string &path, const torch::Device &device);

class DeepmdBackend : public ModelBackend {
 public:
  DeepmdBackend(torch::jit::Module module, const std::string &path, const torch::Device &device);
  Evaluation evaluate(const AtomicSystem &sys, const EvalRequest &req) override;

 private:
  torch::jit::Module module_;
  torch::Device device_;
  int64_t nnei_ = 0;    // sum(sel): neighbor slots of the descriptor
};

}    // namespace ionmd

#endif
