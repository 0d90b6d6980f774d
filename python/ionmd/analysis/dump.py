"""Moved: LAMMPS dumps are read by :mod:`ionmd.lammpsio.dump` (this name re-exports it)."""

from ionmd.lammpsio.dump import COORD_SETS, DumpFrame, iter_dump, open_text

__all__ = ["COORD_SETS", "DumpFrame", "iter_dump", "open_text"]
