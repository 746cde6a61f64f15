# run_pkg_config.cmake — build programs against an installed xcall with
# nothing but `pkg-config --cflags --libs <package>` and the compiler, then
# run them.
#
#   cmake -DPREFIX=<installed xcall> -DLIBDIR=<lib dir under PREFIX>
#         -DPACKAGE=xcall|xcall-static -DSOURCES=<a.cpp;b.c;...>
#         -DBINARY_DIR=<dir> [-DCXX_COMPILER=<c++>] [-DC_COMPILER=<cc>]
#         [-DEXPECT_SHARED=ON|OFF] -P run_pkg_config.cmake
#
# Each source becomes its own program: a .cpp one built with the C++
# compiler and -std=c++20, a .c one with the C compiler (default: cc). Each
# gets XCALL_CONSUMER_SHARED (and, shared, XCALL_CONSUMER_PREFIX) to check
# what it has mapped, an rpath to the prefix's lib dir, and must exit 0.

cmake_minimum_required(VERSION 3.25)

foreach(var PREFIX LIBDIR PACKAGE SOURCES BINARY_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_pkg_config.cmake: ${var} is not set")
  endif()
endforeach()

find_program(pkg_config NAMES pkg-config pkgconf NO_CACHE REQUIRED)
file(REAL_PATH "${PREFIX}" prefix)
set(libdir "${prefix}/${LIBDIR}")

# Only the installed copy: no system-wide xcall.pc may answer instead.
set(ENV{PKG_CONFIG_LIBDIR} "${libdir}/pkgconfig")
unset(ENV{PKG_CONFIG_PATH})
execute_process(
  COMMAND ${pkg_config} --cflags --libs ${PACKAGE}
  OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE
  COMMAND_ERROR_IS_FATAL ANY)
message(STATUS "pkg-config --cflags --libs ${PACKAGE}: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")

if(NOT DEFINED EXPECT_SHARED)
  set(defines)
elseif(EXPECT_SHARED)
  set(defines -DXCALL_CONSUMER_SHARED=1 "-DXCALL_CONSUMER_PREFIX=\"${prefix}\"")
else()
  set(defines -DXCALL_CONSUMER_SHARED=0)
endif()

file(REMOVE_RECURSE "${BINARY_DIR}")
file(MAKE_DIRECTORY "${BINARY_DIR}")
foreach(source IN LISTS SOURCES)
  get_filename_component(name "${source}" NAME_WE)
  get_filename_component(ext "${source}" LAST_EXT)
  if(ext STREQUAL ".c")
    if(NOT C_COMPILER)
      find_program(C_COMPILER cc NO_CACHE REQUIRED)
    endif()
    set(compile ${C_COMPILER})
    set(lang c)
  else()
    if(NOT CXX_COMPILER)
      find_program(CXX_COMPILER c++ NO_CACHE REQUIRED)
    endif()
    set(compile ${CXX_COMPILER} -std=c++20)
    set(lang cxx)
  endif()
  set(exe "${BINARY_DIR}/${name}_${lang}")
  set(command ${compile} ${defines} "${source}" -o "${exe}" ${flags} "-Wl,-rpath,${libdir}")
  list(JOIN command " " shown)
  message(STATUS "Building: ${shown}")
  execute_process(COMMAND ${command} COMMAND_ERROR_IS_FATAL ANY)
  message(STATUS "Running ${exe}")
  execute_process(COMMAND "${exe}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${exe} exited with ${rc}")
  endif()
endforeach()
