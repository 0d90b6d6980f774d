// The model-independent view of one rank's atoms that the back ends evaluate.
// Built by SystemAdaptor from LAMMPS arrays; all tensors live on the CPU in
// float64 (positions in Angstrom). Atoms are the model's atoms only: when some
// LAMMPS types are not handled by the model (NULL in pair_coeff, or skipped by
// pair_style hybrid), the system is compacted and `atom_index` maps its atoms
// back to LAMMPS indices; otherwise atom k is LAMMPS atom k.
#ifndef IONMD_ATOMIC_SYSTEM_H
#define IONMD_ATOMIC_SYSTEM_H

#include <torch/torch.h>

namespace ionmd {

struct AtomicSystem {
  int64_t nlocal = 0;         // atoms [0, nlocal) are owned by this rank
  int64_t nall = 0;           // atoms [nlocal, nall) are ghosts
  torch::Tensor positions;    // [nall, 3] float64, Angstrom
  torch::Tensor species;      // [nall] int64, index into the model's species list
  torch::Tensor pair_i;       // [P] int64, centre atom of each neighbor pair
  torch::Tensor pair_j;       // [P] int64, neighbor atom, |x_j - x_i| < cutoff
  int64_t npairs_local = 0;   // pairs [0, npairs_local) have a local centre atom
  torch::Tensor owner;        // [nall] int64 local atom that each atom images (fold mode only)
  torch::Tensor cell;         // [3, 3] float64, rows are the box vectors a, b, c (Angstrom)
  bool folded = false;        // true when `owner` is valid (every ghost images a local atom)
  bool halo = false;          // ghosts are graph nodes whose features arrive by halo exchange
  torch::Tensor atom_index;   // [nall] int64 LAMMPS index of each atom; undefined = identity
};

// What LAMMPS asks for on this step.
struct EvalRequest {
  bool virial = false;
  bool atom_energy = false;
  bool atom_virial = false;
};

// A model's answer, in float64 on the CPU. `forces` has one row per LAMMPS atom
// index it touches ([nlocal] rows in fold mode, [nall] otherwise).
struct Evaluation {
  torch::Tensor energy;        // [] eV, summed over local atoms
  torch::Tensor forces;        // [n, 3] eV/Angstrom
  torch::Tensor virial;        // [6] eV: xx yy zz xy xz yz (sum r f), or undefined
  torch::Tensor atom_energy;   // [nlocal] eV, or undefined
  torch::Tensor atom_virial;   // [n, 6] eV, or undefined
};

}    // namespace ionmd

#endif
