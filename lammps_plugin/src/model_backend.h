// Back ends: one per model family. Each loads a TorchScript file, exposes the
// metadata the pair style needs, and evaluates an AtomicSystem.
#ifndef IONMD_MODEL_BACKEND_H
#define IONMD_MODEL_BACKEND_H

#include "atomic_system.h"

#include <torch/script.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ionmd {

// A user-facing problem with a model (message is shown as a LAMMPS ERROR).
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ModelInfo {
  std::string path;
  std::string family;                  // "mace" or "deepmd"
  std::vector<std::string> species;    // chemical symbols, in the model's own order
  double cutoff = 0.0;                 // Angstrom
  int num_layers = 1;                  // message-passing layers (1 for local descriptors)
  bool message_passing = false;        // features travel beyond one cutoff
  bool atom_virial = false;            // can return per-atom virials
  bool halo = false;                   // exchanges node features between layers (ionmd export --halo)
  int halo_width = 0;                  // feature values per atom in one exchange
  torch::Dtype dtype = torch::kFloat64;
};

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  const ModelInfo &info() const { return info_; }
  // Ghost atoms needed beyond the cutoff: how far neighbor information must reach.
  virtual double ghost_reach() const { return info_.cutoff; }
  virtual Evaluation evaluate(const AtomicSystem &sys, const EvalRequest &req) = 0;

 protected:
  ModelInfo info_;
};

// Load a TorchScript file and pick its family; throws ModelError with a clear message.
std::unique_ptr<ModelBackend> load_model(const std::string &path, const torch::Device &device);

// Register deepmd-kit's custom ops (its own library when it matches this torch,
// stand-ins otherwise) so that frozen .pth files load. Returns a description.
std::string ensure_deepmd_ops();

// How deepmd-kit's ops were registered ("" if no model needed them yet).
std::string deepmd_ops_source();

std::string symbol_of(int atomic_number);

}    // namespace ionmd

#endif
