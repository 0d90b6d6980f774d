"""Moved: LAMMPS data files and type maps are read by :mod:`ionmd.lammpsio.datafile` (re-exported here)."""

from ionmd.lammpsio.datafile import (
    ReferenceStructure,
    parse_type_map,
    read_data_file,
    read_type_map,
)

__all__ = ["ReferenceStructure", "parse_type_map", "read_data_file", "read_type_map"]
