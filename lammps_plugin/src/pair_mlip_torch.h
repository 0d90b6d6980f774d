// pair_style mlip/torch: TorchScript MACE and DeePMD-kit models in LAMMPS.
//
// The pair style is thin: SystemAdaptor turns LAMMPS data into an AtomicSystem,
// a ModelBackend evaluates it, and scatter() puts forces, energies and virials
// back into LAMMPS arrays. See lammps_plugin/README.md for the syntax.
#ifndef IONMD_PAIR_MLIP_TORCH_H
#define IONMD_PAIR_MLIP_TORCH_H

#include "model_backend.h"
#include "phase_timer.h"
#include "system_adaptor.h"

#include "pair.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairMLIPTorch : public Pair {
 public:
  PairMLIPTorch(class LAMMPS *);
  ~PairMLIPTorch() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void *extract(const char *, int &) override;
  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;

  // Rows of per-atom values (LAMMPS order, float64, `width` per atom) sent to
  // ghosts (forward) or summed onto owners (reverse); used by halo exchange.
  void forward_rows(double *rows, int width);
  void reverse_rows(double *rows, int width);

 private:
  enum class Mode { AUTO, FOLD, SHELL, HALO };
  class LammpsHaloComm;

  std::vector<std::unique_ptr<ionmd::ModelBackend>> models_;
  std::unique_ptr<ionmd::SystemAdaptor> adaptor_;
  ionmd::PhaseTimer timer_;
  torch::Device device_{torch::kCPU};
  Mode mode_request_ = Mode::AUTO;
  bool fold_ = false;           // ghosts folded onto owners (one rank)
  bool ghost_pairs_ = false;    // ghost-shell graph for message passing
  bool halo_ = false;           // ghost node features by halo exchange
  std::unique_ptr<LammpsHaloComm> halo_comm_;
  double cutoff_ = 0.0;         // Angstrom, largest committee cutoff

  bool shell_checked_ = false;  // ghost-shell cost checked since the last init
  const ionmd::AtomicSystem *sys_ = nullptr;    // system being evaluated (for halo comm)

  int devi_every_ = 0;          // committee deviation every N steps (0 = off)
  bool devi_append_ = false;    // open the deviation file in append mode (resumed runs)
  std::string devi_path_;
  FILE *devi_fp_ = nullptr;
  double devi_f_max_ = 0.0;     // latest max force deviation, eV/Angstrom
  double *comm_buf_ = nullptr;  // array being communicated, comm_width_ values per atom
  int comm_width_ = 3;

  void allocate();
  void check_committee();
  void parse_settings(int narg, char **arg, std::vector<std::string> &paths, std::string &device);
  void choose_mode();
  void report_mode();
  void check_shell_cost(const ionmd::AtomicSystem &sys);
  void open_deviation_file();
  torch::Tensor lammps_rows(const torch::Tensor &rows, const ionmd::AtomicSystem &sys, int64_t nrows);
  torch::Device pick_device(const std::string &spec);
  void set_threads();
  ionmd::Evaluation evaluate(ionmd::ModelBackend &model, const ionmd::AtomicSystem &sys,
                             const ionmd::EvalRequest &req);
  void scatter(const ionmd::AtomicSystem &sys, const ionmd::Evaluation &ev);
  void check_finite(const ionmd::AtomicSystem &sys, const ionmd::Evaluation &ev);
  torch::Tensor owned_forces(const ionmd::AtomicSystem &sys, const ionmd::Evaluation &ev);
  void model_deviation(const ionmd::AtomicSystem &sys, const ionmd::Evaluation &first);
};

}    // namespace LAMMPS_NS

#endif
