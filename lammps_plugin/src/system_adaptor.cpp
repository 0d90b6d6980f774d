#include "system_adaptor.h"

#include "atom.h"
#include "domain.h"
#include "error.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"

#include <algorithm>
#include <unordered_map>

using namespace LAMMPS_NS;

namespace ionmd {

void SystemAdaptor::set_type_map(const std::vector<int64_t> &type_to_species)
{
  type_to_species_ = torch::tensor(type_to_species, torch::kInt64);
  species_of_type_ = type_to_species;
}

// keep[t] for each LAMMPS type: mapped to a model species and not skipped by the
// neighbor list (pair_style hybrid skips types that other sub-styles own).
// Undefined when every type is kept, the common case with no extra work.
torch::Tensor SystemAdaptor::kept_types(NeighList *list) const
{
  const int ntypes = static_cast<int>(species_of_type_.size()) - 1;
  std::vector<uint8_t> keep(ntypes + 1, 0);
  bool all = true;
  for (int t = 1; t <= ntypes; t++) {
    keep[t] = species_of_type_[t] >= 0 && !(list->iskip && list->iskip[t]);
    all = all && keep[t];
  }
  if (all) return {};
  return torch::tensor(std::vector<int64_t>(keep.begin(), keep.end()), torch::kInt64).to(torch::kBool);
}

// Drop the atoms whose type is not kept, renumbering pairs and owners; vectorised,
// one pass over the arrays. Kept ghosts image kept atoms (same type), so owners
// and halo exchange stay within the model's atoms.
void SystemAdaptor::compact(AtomicSystem &s, const torch::Tensor &keep_type, const torch::Tensor &types)
{
  auto keep = keep_type.index_select(0, types);                  // [nall] bool
  auto atom_index = keep.nonzero().view({-1});                   // LAMMPS index of each kept atom
  auto new_index = torch::cumsum(keep.to(torch::kInt64), 0) - 1;    // valid where keep
  const int64_t nlocal = keep.narrow(0, 0, s.nlocal).sum().item<int64_t>();
  auto pair_kept = keep.index_select(0, s.pair_i).logical_and(keep.index_select(0, s.pair_j));
  const int64_t npairs_local = pair_kept.narrow(0, 0, s.npairs_local).sum().item<int64_t>();
  s.pair_i = new_index.index_select(0, s.pair_i.masked_select(pair_kept));
  s.pair_j = new_index.index_select(0, s.pair_j.masked_select(pair_kept));
  s.npairs_local = npairs_local;
  s.positions = s.positions.index_select(0, atom_index);
  s.species = s.species.index_select(0, atom_index);
  if (s.folded) s.owner = new_index.index_select(0, s.owner.index_select(0, atom_index));
  s.atom_index = atom_index;
  s.nlocal = nlocal;
  s.nall = atom_index.size(0);
}

AtomicSystem SystemAdaptor::build(NeighList *list, double cutoff, bool fold, bool ghost_pairs)
{
  AtomicSystem s;
  s.nlocal = atom->nlocal;
  s.nall = atom->nlocal + atom->nghost;
  const int nall = static_cast<int>(s.nall);

  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  s.positions = torch::from_blob(atom->x[0], {s.nall, 3}, f64).clone();
  auto types = torch::from_blob(atom->type, {s.nall}, torch::TensorOptions().dtype(torch::kInt32))
                   .to(torch::kInt64);
  s.species = type_to_species_.index_select(0, types);

  const double *h = domain->h;    // Voigt: xprd yprd zprd yz xz xy
  s.cell = torch::tensor({h[0], 0.0, 0.0, h[5], h[1], 0.0, h[4], h[3], h[2]}, f64).view({3, 3});

  // Neighbor pairs within the model cutoff; the list itself reaches cutoff + skin.
  const double cutsq = cutoff * cutoff;
  double **x = atom->x;
  pi_.clear();
  pj_.clear();
  auto collect = [&](int first, int last) {
    for (int ii = first; ii < last; ii++) {
      const int i = list->ilist[ii];
      const int *jlist = list->firstneigh[i];
      const int jnum = list->numneigh[i];
      for (int jj = 0; jj < jnum; jj++) {
        const int j = jlist[jj] & NEIGHMASK;
        const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
        if (dx * dx + dy * dy + dz * dz < cutsq) {
          pi_.push_back(i);
          pj_.push_back(j);
        }
      }
    }
  };
  collect(0, list->inum);
  s.npairs_local = static_cast<int64_t>(pi_.size());
  if (ghost_pairs) collect(list->inum, list->inum + list->gnum);
  const auto npairs = static_cast<int64_t>(pi_.size());
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  s.pair_i = torch::from_blob(pi_.data(), {npairs}, i64).clone();
  s.pair_j = torch::from_blob(pj_.data(), {npairs}, i64).clone();

  if (fold) {
    s.owner = fold_owners(static_cast<int>(s.nlocal), nall);
    s.folded = true;
  }
  auto keep_type = kept_types(list);
  if (keep_type.defined()) compact(s, keep_type, types);
  return s;
}

// Local atom that each ghost is a periodic image of, by atom ID. Valid only when
// every ghost's owner is on this rank (one MPI rank). A hash of nlocal IDs per
// step costs far less than one model evaluation, and never goes stale.
torch::Tensor SystemAdaptor::fold_owners(int nlocal, int nall)
{
  if (!atom->tag_enable)
    error->all(FLERR, "pair_style mlip/torch: atom IDs are required (atom_modify id yes)");
  local_of_.clear();
  local_of_.reserve(nlocal);
  for (int i = 0; i < nlocal; i++) local_of_.emplace(atom->tag[i], i);
  torch::Tensor owner = torch::empty({nall}, torch::kInt64);
  auto *o = owner.data_ptr<int64_t>();
  for (int i = 0; i < nall; i++) {
    auto it = local_of_.find(atom->tag[i]);
    if (it == local_of_.end())
      error->one(FLERR, "pair_style mlip/torch: ghost atom ID {} has no local owner; folding needs "
                 "one MPI rank (use mode shell)", atom->tag[i]);
    o[i] = it->second;
  }
  return owner;
}

}    // namespace ionmd
