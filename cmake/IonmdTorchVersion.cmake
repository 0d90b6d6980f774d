# ionmd_torch_version(<var>): the full version string of the torch found by
# find_package(Torch), read from its install tree (pip torch: torch/version.py;
# libtorch archive: build-version), else Torch_VERSION. abi_check.cpp compares
# it with the torch loaded at run time. Shared by the plugin build
# (FindTorchFromPython.cmake) and the static ML-IONMD package, which
# lammps_plugin/static/install_package.py copies next to ML-IONMD.cmake.
function(ionmd_torch_version out_var)
  set(_version "${Torch_VERSION}")
  if(EXISTS "${TORCH_INSTALL_PREFIX}/version.py")
    file(STRINGS "${TORCH_INSTALL_PREFIX}/version.py" _line REGEX "^__version__")
    string(REGEX REPLACE ".*['\"]([^'\"]+)['\"].*" "\\1" _version "${_line}")
  elseif(EXISTS "${TORCH_INSTALL_PREFIX}/build-version")
    file(STRINGS "${TORCH_INSTALL_PREFIX}/build-version" _version LIMIT_COUNT 1)
  endif()
  set(${out_var} "${_version}" PARENT_SCOPE)
endfunction()
