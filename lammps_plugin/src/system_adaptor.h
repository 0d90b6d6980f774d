// LAMMPS -> AtomicSystem: positions, model species, neighbor pairs within the
// cutoff, the box, and (on one rank) which local atom each ghost images.
#ifndef IONMD_SYSTEM_ADAPTOR_H
#define IONMD_SYSTEM_ADAPTOR_H

#include "atomic_system.h"
#include "pointers.h"

namespace LAMMPS_NS {
class NeighList;
}

#include <unordered_map>
#include <vector>

namespace ionmd {

class SystemAdaptor : protected LAMMPS_NS::Pointers {
 public:
  explicit SystemAdaptor(LAMMPS_NS::LAMMPS *lmp) : Pointers(lmp) {}

  // type_to_species[t] = model species index of LAMMPS type t (index 0 unused),
  // or -1 for a type the model does not handle (NULL in pair_coeff).
  void set_type_map(const std::vector<int64_t> &type_to_species);

  // Build this step's system. `fold` requests ghost -> owner folding (one rank);
  // `ghost_pairs` also lists pairs centred on ghost atoms (needs a ghost list).
  // Atoms of types that are NULL, or that the list skips (pair_style hybrid),
  // are left out of the system, and pairs touching them are dropped.
  AtomicSystem build(LAMMPS_NS::NeighList *list, double cutoff, bool fold, bool ghost_pairs);

 private:
  torch::Tensor type_to_species_;
  std::vector<int64_t> species_of_type_;
  std::vector<int64_t> pi_, pj_;    // reused buffers
  std::unordered_map<LAMMPS_NS::tagint, int64_t> local_of_;

  torch::Tensor fold_owners(int nlocal, int nall);
  torch::Tensor kept_types(LAMMPS_NS::NeighList *list) const;
  static void compact(AtomicSystem &s, const torch::Tensor &keep_type, const torch::Tensor &types);
};

}    // namespace ionmd

#endif
