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

# Full version string of the torch we compile against.
include(${CMAKE_CURRENT_LIST_DIR}/IonmdTorchVersion.cmake)
ionmd_torch_version(IONMD_TORCH_VERSION)
set(IONMD_TORCH_LIBDIR "${TORCH_INSTALL_PREFIX}/lib")
message(STATUS "ionmd: torch ${IONMD_TORCH_VERSION} at ${TORCH_INSTALL_PREFIX}")
