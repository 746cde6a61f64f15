# check_layout.cmake — `cmake --install` of a build tree into a fresh prefix,
# then what a user finds there.
#
#   cmake -DINSTALL_FROM=<xcall build dir> -DPREFIX=<prefix> [-DCONFIG=<cfg>]
#         -DLIBDIR=<...> -DINCLUDEDIR=<...> -DBINDIR=<...> -DDOCDIR=<...>
#         -DSONAME=<libxcall.so.N> -DVERSION=<x.y.z> -DTORTURE=ON|OFF
#         -P check_layout.cmake
#
# The prefix it leaves is the install.* consumer tests' fixture. Fails when
# a file is missing (headers, both libraries and the SONAME links, the CMake
# package with both export sets, xcall.pc and xcall-static.pc, the docs,
# xcall-torture when the tools are built), when the tool does not run, or
# when something private got installed (the fault-injection build, src/
# headers, tests).

cmake_minimum_required(VERSION 3.25)

foreach(var INSTALL_FROM PREFIX LIBDIR INCLUDEDIR BINDIR DOCDIR SONAME VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_layout.cmake: ${var} is not set")
  endif()
endforeach()

set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
file(REMOVE_RECURSE "${PREFIX}")
execute_process(
  COMMAND ${CMAKE_COMMAND} --install "${INSTALL_FROM}" --prefix "${PREFIX}" ${config_args}
  COMMAND_ERROR_IS_FATAL ANY)

set(errors "")
set(lib "${PREFIX}/${LIBDIR}")
set(expected
  "${PREFIX}/${INCLUDEDIR}/xcall/xcall.hpp"
  "${PREFIX}/${INCLUDEDIR}/xcall/export.h"
  "${lib}/libxcall.a"
  "${lib}/libxcall.so.${VERSION}"
  "${lib}/cmake/xcall/xcallConfig.cmake"
  "${lib}/cmake/xcall/xcallConfigVersion.cmake"
  "${lib}/cmake/xcall/xcallSharedTargets.cmake"
  "${lib}/cmake/xcall/xcallStaticTargets.cmake"
  "${lib}/pkgconfig/xcall.pc"
  "${lib}/pkgconfig/xcall-static.pc"
  "${PREFIX}/${DOCDIR}/README.md"
  "${PREFIX}/${DOCDIR}/BENCHMARKS.md"
  "${PREFIX}/${DOCDIR}/docs/design.md"
  "${PREFIX}/${DOCDIR}/docs/api.md")
if(TORTURE)
  list(APPEND expected "${PREFIX}/${BINDIR}/xcall-torture")
endif()
foreach(f IN LISTS expected)
  if(NOT EXISTS "${f}")
    string(APPEND errors "  missing: ${f}\n")
  endif()
endforeach()

# libxcall.so -> libxcall.so.N -> libxcall.so.x.y.z
foreach(link libxcall.so ${SONAME})
  if(NOT IS_SYMLINK "${lib}/${link}")
    string(APPEND errors "  not a symbolic link: ${lib}/${link}\n")
  endif()
endforeach()
file(REAL_PATH "${lib}/libxcall.so" so_target)
if(NOT so_target STREQUAL "${lib}/libxcall.so.${VERSION}")
  string(APPEND errors "  libxcall.so leads to ${so_target}\n")
endif()

# Nothing private.
file(GLOB_RECURSE installed RELATIVE "${PREFIX}" "${PREFIX}/*")
foreach(f IN LISTS installed)
  if(f MATCHES "fault_injection|gtest|_test|/src/|test_support"
     OR (f MATCHES "^${INCLUDEDIR}/" AND NOT f MATCHES "^${INCLUDEDIR}/xcall/[a-z_]+\\.(hpp|h)$"))
    string(APPEND errors "  private file installed: ${f}\n")
  endif()
endforeach()

if(TORTURE AND EXISTS "${PREFIX}/${BINDIR}/xcall-torture")
  execute_process(COMMAND "${PREFIX}/${BINDIR}/xcall-torture" --help
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(APPEND errors "  xcall-torture --help exited with ${rc}: ${err}\n")
  endif()
endif()

if(errors)
  message(FATAL_ERROR "install into ${PREFIX}:\n${errors}")
endif()
list(LENGTH installed n)
message(STATUS "install into ${PREFIX}: ${n} files, layout as expected")
