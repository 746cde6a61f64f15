# xcallInstall.cmake — what `cmake --install` lays out (XCALL_INSTALL), and
# CPack's Debian package of the same files.
#
#   <prefix>/include/xcall/                  the public headers
#   <libdir>/libxcall.a                      xcall::xcall_static
#   <libdir>/libxcall.so{,.0,.0.1.0}         xcall::xcall_shared (SONAME libxcall.so.0)
#   <libdir>/cmake/xcall/                    find_package(xcall [COMPONENTS shared|static])
#   <libdir>/pkgconfig/xcall.pc              pkg-config: the shared library
#   <libdir>/pkgconfig/xcall-static.pc       pkg-config: the static library
#   <datadir>/doc/xcall/                     README, BENCHMARKS, docs/*.md
#   <bindir>/xcall-torture                   (tools/torture/CMakeLists.txt)
#
# The .pc files and the CMake package are relocatable: they find the prefix
# from their own place, so `cmake --install --prefix <anywhere>` works.

include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(XCALL_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/xcall")
set(XCALL_PKGCONFIG_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

# ---- headers and libraries --------------------------------------------------
# One export set per library, so that a package holding only one of them
# (a distribution's split) still yields a working CMake package.
install(TARGETS xcall_static
  EXPORT xcallStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS xcall_shared
  EXPORT xcallSharedTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/xcall
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# ---- CMake package ----------------------------------------------------------
install(EXPORT xcallStaticTargets
  NAMESPACE xcall::
  FILE xcallStaticTargets.cmake
  DESTINATION ${XCALL_CMAKE_DIR})
install(EXPORT xcallSharedTargets
  NAMESPACE xcall::
  FILE xcallSharedTargets.cmake
  DESTINATION ${XCALL_CMAKE_DIR})
configure_package_config_file(cmake/xcallConfig.cmake.in
  "${PROJECT_BINARY_DIR}/xcallConfig.cmake"
  INSTALL_DESTINATION ${XCALL_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/xcallConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/xcallConfig.cmake"
  "${PROJECT_BINARY_DIR}/xcallConfigVersion.cmake"
  DESTINATION ${XCALL_CMAKE_DIR})

# ---- pkg-config ---------------------------------------------------------------
# prefix is found from the .pc file's own directory (${pcfiledir}), so an
# install into another --prefix, or DESTDIR, needs no regeneration.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(XCALL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(XCALL_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH xcall_pc_up "/x/${XCALL_PKGCONFIG_DIR}" "/x")
  string(REGEX REPLACE "/$" "" xcall_pc_up "${xcall_pc_up}")
  set(XCALL_PC_PREFIX "\${pcfiledir}/${xcall_pc_up}")
  set(XCALL_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(XCALL_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(XCALL_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
foreach(pc xcall xcall-static)
  configure_file(cmake/${pc}.pc.in "${PROJECT_BINARY_DIR}/${pc}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/${pc}.pc" DESTINATION ${XCALL_PKGCONFIG_DIR})
endforeach()

# ---- documentation ------------------------------------------------------------
install(FILES README.md BENCHMARKS.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md")

# ---- CPack: cpack -G DEB (make package) ---------------------------------------
# One package with everything (the runtime library, the development files,
# the tool); a libxcall0 / libxcall-dev split would need CPack components.
set(CPACK_PACKAGE_NAME "xcall")
set(CPACK_PACKAGE_VENDOR "xcall")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
  "xcall gives a user-space program what kernel/smp.c gives the kernel: \
smp_call_function_single, smp_call_function_many, on_each_cpu and friends, \
over CPUs that are threads of the program. This package holds the headers, \
the static and shared libraries, the CMake package and pkg-config files, \
the documentation and the xcall-torture tool.")
set(CPACK_PACKAGE_CONTACT "xcall maintainers <xcall@localhost>")
set(CPACK_GENERATOR "DEB")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "xcall maintainers <xcall@localhost>")
# dpkg-shlibdeps works out libc6 and libstdc++6 from libxcall.so and
# xcall-torture when it is there (dpkg-dev); otherwise say so by hand.
find_program(XCALL_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(XCALL_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.34), libstdc++6 (>= 12)")
endif()
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_SOURCE_IGNORE_FILES "/build/;/\\\\.git/")
include(CPack)
