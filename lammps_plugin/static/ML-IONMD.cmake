# ML-IONMD: ionmd's pair_style mlip/torch compiled into LAMMPS (no PLUGIN package).
# Installed into <lammps>/cmake/Modules/Packages/ by ionmd's
# lammps_plugin/static/install_package.py; LAMMPS includes it for -D PKG_ML-IONMD=on.
# libtorch comes from CMAKE_PREFIX_PATH (a libtorch archive, or
# python -c 'import torch; print(torch.utils.cmake_prefix_path)').
# LAMMPS's own FindMKL.cmake would answer torch's optional MKL search and leave
# "MKL_INCLUDE_DIR-NOTFOUND" in torch's include path: search without LAMMPS's
# modules, as the plugin build does, and drop NOTFOUND paths left in a cache.
set(_ionmd_module_path "${CMAKE_MODULE_PATH}")
set(CMAKE_MODULE_PATH "")
find_package(Torch REQUIRED)
set(CMAKE_MODULE_PATH "${_ionmd_module_path}")
if(TARGET caffe2::mkl)
  get_target_property(_ionmd_mkl_inc caffe2::mkl INTERFACE_INCLUDE_DIRECTORIES)
  if(_ionmd_mkl_inc)
    list(FILTER _ionmd_mkl_inc EXCLUDE REGEX "-NOTFOUND$")
    set_target_properties(caffe2::mkl PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_ionmd_mkl_inc}")
  endif()
endif()

# Full torch version, as abi_check.cpp records it (the plugin build's reader,
# copied next to this file by install_package.py).
include(${CMAKE_CURRENT_LIST_DIR}/IonmdTorchVersion.cmake)
ionmd_torch_version(IONMD_TORCH_VERSION)

# LAMMPS version of this tree: PROJECT_VERSION is year.month.day.update.
string(REPLACE "." ";" _ionmd_parts "${PROJECT_VERSION}")
list(GET _ionmd_parts 0 _ionmd_year)
list(GET _ionmd_parts 1 _ionmd_month)
list(GET _ionmd_parts 2 _ionmd_day)
list(GET _ionmd_parts 3 _ionmd_update)
math(EXPR _ionmd_date "${_ionmd_year} * 10000 + ${_ionmd_month} * 100 + ${_ionmd_day}")

# IONMD_STATIC_PACKAGE: the deepmd stand-in ops are registered from inside lmp
# instead of dlopening libionmd_deepmd_stubs.so; the halo exchange op
# (ionmd::halo_exchange) is compiled in too. The ABI guard is not applied (its
# caller, plugin_main.cpp, is not installed): LAMMPS, torch and the pair style
# are linked into one binary, so they cannot disagree.
target_compile_definitions(lammps PRIVATE
  IONMD_STATIC_PACKAGE
  IONMD_LAMMPS_DATE=${_ionmd_date}L
  IONMD_LAMMPS_UPDATE=${_ionmd_update}L
  IONMD_TORCH_VERSION="${IONMD_TORCH_VERSION}")
target_link_libraries(lammps PRIVATE ${TORCH_LIBRARIES})

# lmp and liblammps find libtorch at run time without LD_LIBRARY_PATH.
set(_ionmd_torch_libdir "${TORCH_INSTALL_PREFIX}/lib")
foreach(_ionmd_target lammps lmp)
  if(TARGET ${_ionmd_target})
    set_property(TARGET ${_ionmd_target} APPEND PROPERTY BUILD_RPATH "${_ionmd_torch_libdir}")
    set_property(TARGET ${_ionmd_target} APPEND PROPERTY INSTALL_RPATH "${_ionmd_torch_libdir}")
  endif()
endforeach()
message(STATUS "ML-IONMD: torch ${IONMD_TORCH_VERSION} at ${TORCH_INSTALL_PREFIX}, LAMMPS ${_ionmd_date}")
