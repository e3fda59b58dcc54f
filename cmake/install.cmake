# install.cmake - what `cmake --install` puts under the prefix.
#
# Normal builds install the headers, both libraries, the CMake package
# (find_package(baracuda) -> baracuda::baracuda, the shared library, and
# baracuda::baracuda_static) and a pkg-config file (baracuda.pc).
# With BK_PYTHON (the Python wheel's build) only the shared library is installed, into
# baracuda/lib beside the package's modules.
include(GNUInstallDirs)

if(BK_PYTHON)
  # one file named as its soname (a wheel holds no symlinks); the package loads it by path
  install(FILES $<TARGET_FILE:baracuda_shared> DESTINATION baracuda/lib RENAME libbaracuda.so.${PROJECT_VERSION_MAJOR})
  return()
endif()

set(BK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/baracuda)
install(DIRECTORY include/baracuda DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(TARGETS baracuda_shared EXPORT baracudaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT baracudaTargets NAMESPACE baracuda:: DESTINATION ${BK_CMAKE_DIR})
# The static library's link interface names CUDA::cudart_static and OpenMP::OpenMP_C:
# its targets live in their own file, loaded by the package only when those are found.
install(TARGETS baracuda EXPORT baracudaStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT baracudaStaticTargets NAMESPACE baracuda:: DESTINATION ${BK_CMAKE_DIR})

include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/baracudaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/baracudaConfig.cmake INSTALL_DESTINATION ${BK_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/baracudaConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/baracudaConfig.cmake ${PROJECT_BINARY_DIR}/baracudaConfigVersion.cmake
  DESTINATION ${BK_CMAKE_DIR})

# pkg-config: `pkg-config --cflags --libs baracuda` links the shared library;
# `--static` adds what the static library needs.
set(BK_PC_PRIVATE "-lm")
if(OpenMP_C_FOUND)
  string(APPEND BK_PC_PRIVATE " ${OpenMP_C_FLAGS}")
endif()
if(BK_WITH_CUDA)
  string(APPEND BK_PC_PRIVATE " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt -lpthread -lstdc++")
endif()
# the prefix is found from the .pc file's own place, so `cmake --install --prefix` works
file(RELATIVE_PATH BK_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(cmake/baracuda.pc.in ${PROJECT_BINARY_DIR}/baracuda.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/baracuda.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
