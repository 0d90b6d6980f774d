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

  // type_to_species[t] = model species index of LAMMPS type t (index 0 unused).
  void set_type_map(const std::vector<int64_t> &type_to_species);

  // Build this step's system. `fold` requests ghost -> owner folding (one rank);
  // `ghost_pairs` also lists pairs centred on ghost atoms (needs a ghost list).
  AtomicSystem build(LAMMPS_NS::NeighList *list, double cutoff, bool fold, bool ghost_pairs);

 private:
  torch::Tensor type_to_species_;
  std::vector<int64_t> pi_, pj_;    // reused buffers
  std::unordered_map<LAMMPS_NS::tagint, int64_t> local_of_;

  torch::Tensor fold_owners(int nlocal, int nall);
};

}    // namespace ionmd

#endif
