# check_deb.cmake — `cpack -G DEB` of a build tree, and what the package holds.
#
#   cmake -DCPACK=<cpack> -DCONFIG_FILE=<build>/CPackConfig.cmake
#         -DOUTPUT_DIR=<dir> -DDPKG_DEB=<dpkg-deb> [-DTORTURE=ON|OFF]
#         -P check_deb.cmake
#
# Fails when cpack fails, when it makes no single .deb, or when the package
# lacks the shared library, its SONAME link, the static library, the
# headers, the CMake package, the .pc files, the docs or (TORTURE) the tool,
# or when its control file has no Depends (dpkg-shlibdeps or the fallback).

cmake_minimum_required(VERSION 3.25)

foreach(var CPACK CONFIG_FILE OUTPUT_DIR DPKG_DEB)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_deb.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${OUTPUT_DIR}")
execute_process(COMMAND ${CPACK} -G DEB --config "${CONFIG_FILE}" -B "${OUTPUT_DIR}"
  COMMAND_ERROR_IS_FATAL ANY)
file(GLOB debs "${OUTPUT_DIR}/*.deb")
list(LENGTH debs n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "cpack made ${n} .deb files: ${debs}")
endif()

execute_process(COMMAND ${DPKG_DEB} --contents ${debs}
  OUTPUT_VARIABLE contents COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${DPKG_DEB} --field ${debs} Package Version Depends
  OUTPUT_VARIABLE control COMMAND_ERROR_IS_FATAL ANY)
message(STATUS "${debs}:\n${control}")

set(errors "")
set(expected
  "/libxcall\\.so\\.[0-9]+\\.[0-9]+\\.[0-9]+$"
  "/libxcall\\.so\\.[0-9]+ -> "
  "/libxcall\\.a$"
  "/include/xcall/xcall\\.hpp$"
  "/cmake/xcall/xcallConfig\\.cmake$"
  "/pkgconfig/xcall\\.pc$"
  "/pkgconfig/xcall-static\\.pc$"
  "/share/doc/xcall/README\\.md$")
if(TORTURE)
  list(APPEND expected "/bin/xcall-torture$")
endif()
string(REPLACE "\n" ";" lines "${contents}")
foreach(pattern IN LISTS expected)
  set(found FALSE)
  foreach(line IN LISTS lines)
    if(line MATCHES "${pattern}")
      set(found TRUE)
      break()
    endif()
  endforeach()
  if(NOT found)
    string(APPEND errors "  nothing matches ${pattern}\n")
  endif()
endforeach()
if(NOT control MATCHES "Depends: [^\n]*libc6")
  string(APPEND errors "  no Depends on libc6\n")
endif()
if(errors)
  message(FATAL_ERROR "${debs}:\n${errors}")
endif()
