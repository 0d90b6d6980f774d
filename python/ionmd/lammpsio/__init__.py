"""LAMMPS file formats, one home each.

- :mod:`~ionmd.lammpsio.dump`: text dumps (``dump custom``, plain or gzip), streamed frame by frame
  with a batched fast path.
- :mod:`~ionmd.lammpsio.datafile`: data files (read), the type map (``type_map: 1=Li 2=F``) and the
  box/cell conversion.
"""
