# Locate libtorch. Prefer an explicit Torch_DIR / CMAKE_PREFIX_PATH; otherwise
# ask the Python interpreter that is building us (the same torch that runs).
if(NOT Torch_DIR)
  find_package(Python COMPONENTS Interpreter)
  if(Python_EXECUTABLE)
    execute_process(
      COMMAND ${Python_EXECUTABLE} -c "import torch; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _ionmd_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _ionmd_rc ERROR_QUIET)
    if(_ionmd_rc EQUAL 0)
      list(APPEND CMAKE_PREFIX_PATH ${_ionmd_torch_prefix})
    endif()
  endif()
endif()
find_package(Torch REQUIRED)

# Full version string of the torch we compile against, read from the install
# tree (pip torch: torch/version.py; libtorch zip: build-version).
set(IONMD_TORCH_VERSION "${Torch_VERSION}")
if(EXISTS "${TORCH_INSTALL_PREFIX}/version.py")
  file(STRINGS "${TORCH_INSTALL_PREFIX}/version.py" _v REGEX "^__version__")
  string(REGEX REPLACE ".*['\"]([^'\"]+)['\"].*" "\\1" IONMD_TORCH_VERSION "${_v}")
elseif(EXISTS "${TORCH_INSTALL_PREFIX}/build-version")
  file(STRINGS "${TORCH_INSTALL_PREFIX}/build-version" IONMD_TORCH_VERSION LIMIT_COUNT 1)
endif()
set(IONMD_TORCH_LIBDIR "${TORCH_INSTALL_PREFIX}/lib")
message(STATUS "ionmd: torch ${IONMD_TORCH_VERSION} at ${TORCH_INSTALL_PREFIX}")
