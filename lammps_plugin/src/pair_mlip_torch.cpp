#include "pair_mlip_torch.h"

#include "halo_exchange.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <thread>

using namespace LAMMPS_NS;
using ionmd::EvalRequest;
using ionmd::Evaluation;

// LAMMPS's ghost communication, as the halo exchange op sees it.
// Rows are the model's atoms (AtomicSystem order): when the system is compacted
// (NULL or skipped types), they travel through LAMMPS-ordered rows and back.
class PairMLIPTorch::LammpsHaloComm : public ionmd::HaloComm {
 public:
  explicit LammpsHaloComm(PairMLIPTorch *pair) : pair_(pair) {}
  int64_t nlocal() const override { return pair_->sys_->nlocal; }
  int64_t nghost() const override { return pair_->sys_->nall - pair_->sys_->nlocal; }
  void forward(torch::Tensor &rows) override { exchange(rows, true); }
  void reverse(torch::Tensor &rows) override { exchange(rows, false); }

 private:
  PairMLIPTorch *pair_;
  void exchange(torch::Tensor &rows, bool forward)
  {
    const int w = width(rows);
    const auto &index = pair_->sys_->atom_index;
    torch::Tensor full = rows;
    if (index.defined()) {
      full = torch::zeros({pair_->atom->nlocal + pair_->atom->nghost, w}, rows.options());
      full.index_copy_(0, index, rows);
    }
    if (forward) pair_->forward_rows(full.data_ptr<double>(), w);
    else pair_->reverse_rows(full.data_ptr<double>(), w);
    if (index.defined()) rows.copy_(full.index_select(0, index));
  }
  // LAMMPS sized its buffers from the top-level pair style (hybrid's, if any).
  int width(const torch::Tensor &rows) const
  {
    const int w = static_cast<int>(rows.size(1));
    const Pair *top = pair_->force->pair;
    if (w > pair_->comm_forward || w > top->comm_forward || w > top->comm_reverse)
      throw std::runtime_error("halo exchange of " + std::to_string(w) + " values per atom exceeds the " +
                               std::to_string(std::min(pair_->comm_forward, top->comm_forward)) +
                               " LAMMPS's communication buffers were sized for");
    return w;
  }
};

PairMLIPTorch::PairMLIPTorch(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
  comm_reverse = 3;
  nextra = 1;
  pvector = new double[nextra]();
  adaptor_ = std::make_unique<ionmd::SystemAdaptor>(lmp);
  halo_comm_ = std::make_unique<LammpsHaloComm>(this);
}

PairMLIPTorch::~PairMLIPTorch()
{
  if (timer_.enabled() && comm->me == 0) utils::logmesg(lmp, timer_.report());
  if (devi_fp_) fclose(devi_fp_);
  delete[] pvector;
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairMLIPTorch::allocate()
{
  allocated = 1;
  const int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  memory->create(cutghost, n + 1, n + 1, "pair:cutghost");
  for (int i = 0; i <= n; i++)
    for (int j = 0; j <= n; j++) setflag[i][j] = 0;
}

/* ----------------------------------------------------------------------
   pair_style mlip/torch MODEL.pt [MODEL2.pt ...] [device D] [deviation N FILE]
                         [deviation_append yes|no] [mode M]
------------------------------------------------------------------------- */

namespace {

const char *const kKeywords = "device, deviation, deviation_append, mode";

bool is_keyword(const std::string &w)
{
  return w == "device" || w == "deviation" || w == "deviation_append" || w == "mode";
}

// A word that is not a keyword names a model when the file exists or its name
// ends like a model file; anything else is taken to be a mistyped keyword.
bool looks_like_model(const std::string &w)
{
  if (std::ifstream(w).good()) return true;
  for (const char *ext : {".pt", ".pth", ".pt2", ".model", ".ts", ".jit"}) {
    const std::string e = ext;
    if (w.size() > e.size() && w.compare(w.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

}    // namespace

void PairMLIPTorch::parse_settings(int narg, char **arg, std::vector<std::string> &paths, std::string &device)
{
  int iarg = 0;
  bool keywords_started = false;
  while (iarg < narg) {
    std::string word = arg[iarg];
    auto need = [&](int n) {
      if (iarg + n >= narg) error->all(FLERR, "pair_style mlip/torch: keyword '{}' needs {} value(s)", word, n);
    };
    if (!is_keyword(word)) {
      if (keywords_started || !looks_like_model(word))
        error->all(FLERR, "pair_style mlip/torch: unknown keyword '{}' (valid keywords: {}; model files "
                   "come first and must exist)", word, kKeywords);
      paths.push_back(word);
      iarg++;
      continue;
    }
    keywords_started = true;
    if (word == "device") {
      need(1);
      device = arg[iarg + 1];
      iarg += 2;
    } else if (word == "deviation") {
      need(2);
      devi_every_ = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (devi_every_ < 1) error->all(FLERR, "pair_style mlip/torch: deviation interval must be >= 1");
      devi_path_ = arg[iarg + 2];
      iarg += 3;
    } else if (word == "deviation_append") {
      need(1);
      const std::string v = arg[iarg + 1];
      if (v != "yes" && v != "no")
        error->all(FLERR, "pair_style mlip/torch: deviation_append must be yes or no, not '{}'", v);
      devi_append_ = v == "yes";
      iarg += 2;
    } else {    // mode
      need(1);
      std::string m = arg[iarg + 1];
      if (m == "auto") mode_request_ = Mode::AUTO;
      else if (m == "fold") mode_request_ = Mode::FOLD;
      else if (m == "shell") mode_request_ = Mode::SHELL;
      else if (m == "halo") mode_request_ = Mode::HALO;
      else error->all(FLERR, "pair_style mlip/torch: mode must be auto, fold, shell or halo, not '{}'", m);
      iarg += 2;
    }
  }
}

void PairMLIPTorch::settings(int narg, char **arg)
{
  if (narg < 1) error->all(FLERR, "Illegal pair_style mlip/torch command: expected MODEL.pt [...]");
  std::vector<std::string> paths;
  std::string device = "auto";
  devi_every_ = 0;
  devi_append_ = false;
  mode_request_ = Mode::AUTO;
  parse_settings(narg, arg, paths, device);
  if (paths.empty()) error->all(FLERR, "pair_style mlip/torch: no model file given");
  if (devi_every_ > 0 && paths.size() < 2)
    error->all(FLERR, "pair_style mlip/torch: 'deviation' needs a committee of at least two models");

  set_threads();
  device_ = pick_device(device);
  models_.clear();
  for (const auto &p : paths) {
    try {
      models_.push_back(ionmd::load_model(p, device_));
    } catch (const std::exception &e) {
      error->all(FLERR, "pair_style mlip/torch: {}", e.what());
    }
  }
  check_committee();
  cutoff_ = 0.0;
  for (const auto &m : models_) cutoff_ = std::max(cutoff_, m->info().cutoff);
  // The graph mode, and with it the communication sizes, are fixed here: pair_style
  // hybrid reads comm_forward/comm_reverse/ghostneigh of its sub-styles right
  // after their settings(), and sizes LAMMPS's buffers from those values.
  choose_mode();

  if (comm->me == 0) {
    for (const auto &m : models_) {
      const auto &inf = m->info();
      std::string species;
      for (const auto &s : inf.species) species += s + " ";
      utils::logmesg(lmp, "mlip/torch: {} model '{}': species {}cutoff {} A, {} layer(s), {}, device {}\n",
                     inf.family, inf.path, species, inf.cutoff, inf.num_layers,
                     inf.dtype == torch::kFloat32 ? "float32" : "float64", device_.str());
    }
    const std::string ops = ionmd::deepmd_ops_source();
    if (!ops.empty()) utils::logmesg(lmp, "mlip/torch: deepmd-kit ops from {}\n", ops);
  }
  if (devi_every_ > 0 && comm->me == 0) open_deviation_file();
}

// Rank 0: the committee deviation file; `deviation_append yes` keeps earlier
// lines (a resumed run) and writes the header only into an empty file.
void PairMLIPTorch::open_deviation_file()
{
  if (devi_fp_) fclose(devi_fp_);
  devi_fp_ = fopen(devi_path_.c_str(), devi_append_ ? "a" : "w");
  if (!devi_fp_) error->one(FLERR, "pair_style mlip/torch: cannot open deviation file '{}'", devi_path_);
  fseek(devi_fp_, 0, SEEK_END);
  if (ftell(devi_fp_) == 0)
    fprintf(devi_fp_, "#%11s %18s %18s %18s %18s %18s %18s\n", "step", "max_devi_v", "min_devi_v",
            "avg_devi_v", "max_devi_f", "min_devi_f", "avg_devi_f");
  fflush(devi_fp_);
}

void PairMLIPTorch::check_committee()
{
  const auto &ref = models_.front()->info();
  for (size_t k = 1; k < models_.size(); k++) {
    const auto &inf = models_[k]->info();
    if (inf.species != ref.species)
      error->all(FLERR, "pair_style mlip/torch: committee models have different species: '{}' vs '{}'",
                 ref.path, inf.path);
    if (std::fabs(inf.cutoff - ref.cutoff) > 1e-12)
      error->all(FLERR, "pair_style mlip/torch: committee models have different cutoffs: '{}' ({} A) vs "
                 "'{}' ({} A)", ref.path, ref.cutoff, inf.path, inf.cutoff);
  }
}

// CPU threads: OMP_NUM_THREADS if set, else the node's cores shared among its ranks.
void PairMLIPTorch::set_threads()
{
  int nthreads = 0;
  if (const char *env = std::getenv("OMP_NUM_THREADS")) nthreads = std::atoi(env);
  if (nthreads < 1) {
    MPI_Comm node;
    int node_ranks = 1;
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &node_ranks);
    MPI_Comm_free(&node);
    nthreads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / node_ranks);
  }
  at::set_num_threads(nthreads);
}

// `auto`: the GPU numbered (node-local rank mod GPU count), else the CPU.
torch::Device PairMLIPTorch::pick_device(const std::string &spec)
{
  if (spec == "cpu") return torch::Device(torch::kCPU);
  const bool cuda = torch::cuda::is_available();
  if (spec.rfind("cuda:", 0) == 0) {
    if (!cuda) error->all(FLERR, "pair_style mlip/torch: device {} requested but torch sees no CUDA GPU", spec);
    return torch::Device(spec);
  }
  if (spec != "auto" && spec != "cuda")
    error->all(FLERR, "pair_style mlip/torch: device must be auto, cpu, cuda or cuda:N, not '{}'", spec);
  if (!cuda) {
    if (spec == "cuda") error->all(FLERR, "pair_style mlip/torch: device cuda requested but torch sees no CUDA GPU");
    return torch::Device(torch::kCPU);
  }
  MPI_Comm node;
  int local_rank = 0;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  const int count = static_cast<int>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % count));
}

/* ----------------------------------------------------------------------
   pair_coeff * * Li F [NULL ...]   (one chemical symbol per LAMMPS atom type;
   NULL: a type this style does not handle, for pair_style hybrid)
------------------------------------------------------------------------- */

void PairMLIPTorch::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg < 2 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for mlip/torch must be: pair_coeff * * <one symbol or NULL per atom type>");
  if (narg != 2 + ntypes)
    error->all(FLERR, "pair_coeff * * for mlip/torch needs one chemical symbol (or NULL) per atom type: {} "
               "type(s), but {} symbol(s) given", ntypes, narg - 2);
  const auto &species = models_.front()->info().species;
  std::vector<int64_t> type_to_species(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; t++) {
    std::string sym = arg[1 + t];
    // NULL: the type belongs to another sub-style of pair_style hybrid*.
    if (sym == "NULL") {
      if (force->pair == this)
        error->all(FLERR, "pair_coeff: atom type {} is NULL, but mlip/torch is the only pair style; NULL types "
                   "need pair_style hybrid or hybrid/overlay with another sub-style for them", t);
      continue;
    }
    auto it = std::find(species.begin(), species.end(), sym);
    if (it == species.end()) {
      std::string known;
      for (const auto &s : species) known += " " + s;
      error->all(FLERR, "pair_coeff: element '{}' (atom type {}) is not known to model '{}' (species:{}; "
                 "use NULL for a type that another pair style handles)",
                 sym, t, models_.front()->info().path, known);
    }
    type_to_species[t] = it - species.begin();
  }
  if (std::none_of(type_to_species.begin() + 1, type_to_species.end(), [](int64_t k) { return k >= 0; }))
    error->all(FLERR, "pair_coeff * * for mlip/torch maps every atom type to NULL: give at least one element");
  adaptor_->set_type_map(type_to_species);
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = type_to_species[i] >= 0 && type_to_species[j] >= 0;
}

void PairMLIPTorch::init_style()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style mlip/torch requires 'units metal' (eV, Angstrom), not 'units {}'",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style mlip/torch requires newton on for pairs: remove 'newton off' (or use "
               "'newton on') so that forces on ghost atoms are summed back to their owners");
  if (!atom->tag_enable) error->all(FLERR, "pair_style mlip/torch requires atom IDs");
  if (models_.empty()) error->all(FLERR, "pair_style mlip/torch: no model loaded");

  for (const auto &m : models_)
    if (m->info().family == "deepmd" && m->info().message_passing && comm->nprocs > 1)
      error->all(FLERR, "pair_style mlip/torch: '{}' is a message-passing DeePMD model (e.g. DPA-2/DPA-3), "
                 "which this plugin runs on one MPI rank only; it would give wrong forces on {} ranks",
                 m->info().path, comm->nprocs);
  // Inside pair_style hybrid*, LAMMPS sizes its buffers from the hybrid's values:
  // refuse rather than overrun them.
  Pair *top = force->pair;
  if (top && top != this && (top->comm_forward < comm_forward || top->comm_reverse < comm_reverse))
    error->all(FLERR, "pair_style mlip/torch: the enclosing pair_style {} communicates {}/{} values per atom "
               "(forward/reverse) but mlip/torch needs {}/{}; use mode shell or fold", force->pair_style,
               top->comm_forward, top->comm_reverse, comm_forward, comm_reverse);
  report_mode();
  shell_checked_ = false;
  neighbor->add_request(this, NeighConst::REQ_FULL | (ghost_pairs_ ? NeighConst::REQ_GHOST : 0));
}

// Graph mode: fold on one rank; halo exchange on several ranks when every model
// supports it; otherwise (or on request) a ghost shell of num_layers x cutoff.
// Called from settings(): the mode depends only on the models, the request and
// the number of ranks, and fixes the communication sizes that hybrid reads.
void PairMLIPTorch::choose_mode()
{
  bool message_passing = false;
  int width = 0;
  const ionmd::ModelInfo *no_halo = nullptr;
  for (const auto &m : models_) {
    message_passing = message_passing || m->info().message_passing;
    if (!m->info().halo && !no_halo) no_halo = &m->info();
    width = std::max(width, m->info().halo_width);
  }
  const bool one_rank = comm->nprocs == 1;
  if (mode_request_ == Mode::FOLD && !one_rank)
    error->all(FLERR, "pair_style mlip/torch: mode fold needs one MPI rank (use mode auto, halo or shell)");
  if (mode_request_ == Mode::HALO && no_halo) {
    if (no_halo->family == "mace")
      error->all(FLERR, "pair_style mlip/torch: mode halo needs models exported with `ionmd export --halo`, "
                 "but '{}' is a plain MACE export; re-export its checkpoint with --halo, or use mode shell",
                 no_halo->path);
    error->all(FLERR, "pair_style mlip/torch: mode halo exchanges node features of halo-exported MACE "
               "models; '{}' is a {} model, which does not use it: remove 'mode halo' (mode auto)",
               no_halo->path, no_halo->family);
  }
  fold_ = one_rank && (mode_request_ == Mode::AUTO || mode_request_ == Mode::FOLD);
  halo_ = !fold_ && !no_halo && message_passing && (mode_request_ == Mode::AUTO || mode_request_ == Mode::HALO);
  const bool mace_like = models_.front()->info().family == "mace";
  ghost_pairs_ = !fold_ && !halo_ && mace_like && message_passing;
  ghostneigh = ghost_pairs_ ? 1 : 0;
  comm_forward = halo_ ? width : 0;
  comm_reverse = std::max(3, halo_ ? width : 0);
}

void PairMLIPTorch::report_mode()
{
  double reach = 0.0;
  for (const auto &m : models_) reach = std::max(reach, m->ghost_reach());
  // Ghost shell of num_layers x cutoff (plus skin): exact for any message-passing model.
  if (ghost_pairs_) comm->cutghostuser = std::max(comm->cutghostuser, reach + neighbor->skin);
  if (comm->me == 0) {
    const char *name = fold_ ? "fold (periodic graph of local atoms)"
        : halo_              ? "halo (node features exchanged between layers)"
        : ghost_pairs_       ? "ghost-shell"
                             : "local";
    utils::logmesg(lmp, "mlip/torch: {} mode, cutoff {} A, ghost reach {} A\n", name, cutoff_,
                   ghost_pairs_ ? reach : cutoff_);
  }
}

// Once per init: a ghost shell of num_layers x cutoff can hold many more atoms
// than a rank owns, and then the ghosts dominate the cost. Rank 0 warns once.
void PairMLIPTorch::check_shell_cost(const ionmd::AtomicSystem &sys)
{
  shell_checked_ = true;
  if (!ghost_pairs_) return;
  double local[2] = {static_cast<double>(sys.nlocal), static_cast<double>(sys.nall - sys.nlocal)}, total[2];
  MPI_Allreduce(local, total, 2, MPI_DOUBLE, MPI_SUM, world);
  const double per_atom = total[1] / std::max(1.0, total[0]);
  constexpr double kMaxGhostsPerAtom = 1.0;    // beyond this, the shell at least doubles the cost
  if (per_atom > kMaxGhostsPerAtom && comm->me == 0)
    error->warning(FLERR, "mlip/torch: ghost-shell mode evaluates {:.1f} ghost atoms per local atom on {} "
                   "rank(s), which dominates the cost; export the model with `ionmd export --halo` "
                   "(halo mode needs ghosts of one cutoff, not {} layers)", per_atom, comm->nprocs,
                   models_.front()->info().num_layers);
}

double PairMLIPTorch::init_one(int i, int j)
{
  if (setflag[i][j] == 0)
    error->all(FLERR, "pair_style mlip/torch: atom types {} and {} have no element (NULL in pair_coeff); "
               "NULL types need pair_style hybrid or hybrid/overlay with another sub-style for them", i, j);
  cutghost[i][j] = cutghost[j][i] = cutoff_;
  return cutoff_;
}

void *PairMLIPTorch::extract(const char *name, int &dim)
{
  dim = 0;
  if (strcmp(name, "max_devi_f") == 0) return &devi_f_max_;
  if (strcmp(name, "cutoff") == 0) return &cutoff_;
  return nullptr;
}

/* ---------------------------------------------------------------------- */

void PairMLIPTorch::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  for (const auto &m : models_)
    if (vflag_atom && !m->info().atom_virial) {
      if (m->info().family == "mace")
        error->all(FLERR, "pair_style mlip/torch: per-atom virials (compute stress/atom or centroid/stress/atom) "
                   "need a MACE model exported with `ionmd export --halo`; '{}' is a plain export: re-export "
                   "its checkpoint with --halo", m->info().path);
      error->all(FLERR, "pair_style mlip/torch: '{}' ({} model) does not provide per-atom virials (compute "
                 "stress/atom or centroid/stress/atom)", m->info().path, m->info().family);
    }
  ionmd::AtomicSystem sys;
  {
    auto t = timer_.scope("adapt");
    sys = adaptor_->build(list, cutoff_, fold_, ghost_pairs_);
    sys.halo = halo_;
  }
  if (!shell_checked_) check_shell_cost(sys);
  // Deviation steps need the driving model's virial too: ask for it in this one call.
  const bool deviation_step = devi_every_ > 0 && update->ntimestep % devi_every_ == 0;
  const EvalRequest req{vflag_global != 0 || deviation_step, eflag_atom != 0, vflag_atom != 0};
  Evaluation ev = evaluate(*models_.front(), sys, req);
  {
    auto t = timer_.scope("scatter");
    check_finite(sys, ev);
    scatter(sys, ev);
  }
  if (deviation_step) {
    auto t = timer_.scope("deviation");
    model_deviation(sys, ev);
  }
}

Evaluation PairMLIPTorch::evaluate(ionmd::ModelBackend &model, const ionmd::AtomicSystem &sys,
                                   const EvalRequest &req)
{
  auto t = timer_.scope("evaluate");
  // A halo rank evaluates even with no atoms: its neighbors exchange with it.
  if (sys.nlocal == 0 && !sys.halo) {
    Evaluation ev;
    ev.energy = torch::zeros({}, torch::kFloat64);
    ev.forces = torch::zeros({0, 3}, torch::kFloat64);
    ev.virial = torch::zeros({6}, torch::kFloat64);
    ev.atom_energy = torch::zeros({0}, torch::kFloat64);
    ev.atom_virial = torch::zeros({0, 6}, torch::kFloat64);
    return ev;
  }
  try {
    sys_ = &sys;
    ionmd::HaloCommScope scope(sys.halo ? halo_comm_.get() : nullptr);
    return model.evaluate(sys, req);
  } catch (const ionmd::ModelError &e) {
    error->one(FLERR, "pair_style mlip/torch: {}", e.what());
  } catch (const c10::Error &e) {
    error->one(FLERR, "pair_style mlip/torch: model '{}' failed at step {}: {}", model.info().path,
               update->ntimestep, e.what_without_backtrace());
  }
  return {};
}

void PairMLIPTorch::check_finite(const ionmd::AtomicSystem &sys, const Evaluation &ev)
{
  auto bad = torch::logical_not(torch::isfinite(ev.forces).all(1));
  if (bad.any().item<bool>()) {
    int64_t i = bad.nonzero()[0][0].item<int64_t>();
    if (sys.atom_index.defined()) i = sys.atom_index[i].item<int64_t>();
    error->one(FLERR, "pair_style mlip/torch: non-finite force on atom ID {} at step {} (model '{}'); the "
               "structure has probably left the model's domain", atom->tag[i], update->ntimestep,
               models_.front()->info().path);
  }
}

// Rows of the model's atoms as [nrows, width] LAMMPS-ordered rows (zeros for atoms
// the model does not hold).
torch::Tensor PairMLIPTorch::lammps_rows(const torch::Tensor &rows, const ionmd::AtomicSystem &sys,
                                         int64_t nrows)
{
  auto full = torch::zeros({nrows, rows.size(1)}, torch::kFloat64);
  const int64_t n = rows.size(0);
  if (sys.atom_index.defined()) full.index_add_(0, sys.atom_index.narrow(0, 0, n), rows);
  else full.narrow(0, 0, n).add_(rows);
  return full;
}

void PairMLIPTorch::scatter(const ionmd::AtomicSystem &sys, const Evaluation &ev)
{
  const int64_t nall = atom->nlocal + atom->nghost;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // Add [n, width] model rows into a LAMMPS per-atom array, through atom_index if compacted.
  auto add_rows = [&](double *dest, int64_t width, const torch::Tensor &rows) {
    const int64_t n = rows.size(0);
    if (n == 0) return;
    auto out = torch::from_blob(dest, {nall, width}, f64);
    if (sys.atom_index.defined()) out.index_add_(0, sys.atom_index.narrow(0, 0, n), rows);
    else out.narrow(0, 0, n).add_(rows);
  };
  add_rows(atom->f[0], 3, ev.forces);
  if (eflag_global) eng_vdwl += ev.energy.item<double>();
  if (vflag_global) {
    auto v = ev.virial.contiguous();
    const double *pv = v.data_ptr<double>();
    for (int k = 0; k < 6; k++) virial[k] += pv[k];
  }
  if (eflag_atom) add_rows(eatom, 1, ev.atom_energy.reshape({-1, 1}));
  if (vflag_atom) add_rows(vatom[0], 6, ev.atom_virial);
}

/* ----------------------------------------------------------------------
   committee deviation, in DeePMD's model_devi.out columns
------------------------------------------------------------------------- */

// Forces on the model's local atoms, with ghost contributions summed home by
// reverse comm. Only a folded graph (one rank) may skip that communication, so
// every rank of a multi-rank run takes the same branch.
torch::Tensor PairMLIPTorch::owned_forces(const ionmd::AtomicSystem &sys, const Evaluation &ev)
{
  if (sys.folded && ev.forces.size(0) == sys.nlocal) return ev.forces.narrow(0, 0, sys.nlocal).clone();
  auto full = lammps_rows(ev.forces, sys, atom->nlocal + atom->nghost);
  reverse_rows(full.data_ptr<double>(), 3);
  if (sys.atom_index.defined()) return full.index_select(0, sys.atom_index.narrow(0, 0, sys.nlocal));
  return full.narrow(0, 0, sys.nlocal).clone();
}

void PairMLIPTorch::forward_rows(double *rows, int width)
{
  comm_buf_ = rows;
  comm_width_ = width;
  comm->forward_comm(this, width);
  comm_buf_ = nullptr;
}

void PairMLIPTorch::reverse_rows(double *rows, int width)
{
  comm_buf_ = rows;
  comm_width_ = width;
  comm->reverse_comm(this, width);
  comm_buf_ = nullptr;
}

int PairMLIPTorch::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/)
{
  const int w = comm_width_;
  for (int i = 0; i < n; i++) std::memcpy(buf + i * w, comm_buf_ + static_cast<bigint>(list[i]) * w, sizeof(double) * w);
  return n * w;
}

void PairMLIPTorch::unpack_forward_comm(int n, int first, double *buf)
{
  std::memcpy(comm_buf_ + static_cast<bigint>(first) * comm_width_, buf, sizeof(double) * n * comm_width_);
}

int PairMLIPTorch::pack_reverse_comm(int n, int first, double *buf)
{
  std::memcpy(buf, comm_buf_ + static_cast<bigint>(first) * comm_width_, sizeof(double) * n * comm_width_);
  return n * comm_width_;
}

void PairMLIPTorch::unpack_reverse_comm(int n, int *list, double *buf)
{
  const int w = comm_width_;
  for (int i = 0; i < n; i++) {
    double *row = comm_buf_ + static_cast<bigint>(list[i]) * w;
    for (int d = 0; d < w; d++) row[d] += buf[i * w + d];
  }
}

void PairMLIPTorch::model_deviation(const ionmd::AtomicSystem &sys, const Evaluation &first)
{
  const int64_t nlocal = sys.nlocal;
  const EvalRequest req{true, false, false};
  std::vector<torch::Tensor> forces{owned_forces(sys, first)};
  std::vector<torch::Tensor> virials{first.virial};
  for (size_t k = 1; k < models_.size(); k++) {
    Evaluation ev = evaluate(*models_[k], sys, req);
    forces.push_back(owned_forces(sys, ev));
    virials.push_back(ev.virial);
  }
  // Force deviation per atom: sqrt(mean_k |F_k - <F>|^2), eV/Angstrom.
  auto F = torch::stack(forces);
  auto devi = (F - F.mean(0, true)).pow(2).sum(2).mean(0).sqrt();
  double local[3] = {nlocal ? devi.max().item<double>() : 0.0,
                     nlocal ? -devi.min().item<double>() : -std::numeric_limits<double>::infinity(),
                     nlocal ? devi.sum().item<double>() : 0.0};
  double maxes[2], sum_devi;
  double lm[2] = {local[0], local[1]};
  MPI_Allreduce(lm, maxes, 2, MPI_DOUBLE, MPI_MAX, world);
  MPI_Allreduce(&local[2], &sum_devi, 1, MPI_DOUBLE, MPI_SUM, world);
  // Virial deviation: std over models of each global component, per atom, eV.
  // Nine components in row-major order, as DeePMD reports them.
  auto nine = torch::tensor({0, 3, 4, 3, 1, 5, 4, 5, 2}, torch::kInt64);
  auto V = torch::stack(virials).index_select(1, nine).contiguous();
  auto Vg = torch::zeros_like(V);
  MPI_Allreduce(V.data_ptr<double>(), Vg.data_ptr<double>(), V.numel(), MPI_DOUBLE, MPI_SUM, world);
  // Per model atom: atoms of NULL types have no deviation.
  double natoms = static_cast<double>(nlocal);
  MPI_Allreduce(MPI_IN_PLACE, &natoms, 1, MPI_DOUBLE, MPI_SUM, world);
  auto vdev = ((Vg - Vg.mean(0, true)).pow(2).mean(0).sqrt() / natoms).contiguous();
  devi_f_max_ = maxes[0];
  pvector[0] = devi_f_max_;
  if (comm->me == 0 && devi_fp_) {
    fprintf(devi_fp_, "%12ld %18.10e %18.10e %18.10e %18.10e %18.10e %18.10e\n",
            static_cast<long>(update->ntimestep), vdev.max().item<double>(), vdev.min().item<double>(),
            vdev.mean().item<double>(), maxes[0], -maxes[1], sum_devi / natoms);
    fflush(devi_fp_);
  }
}
