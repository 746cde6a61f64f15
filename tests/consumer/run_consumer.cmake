# run_consumer.cmake — configure, build and run one consumer project.
#
#   cmake -DSOURCE_DIR=<consumer> -DBINARY_DIR=<dir> -DGENERATOR=<gen>
#         [-DMAKE_PROGRAM=<prog>] [-DCXX_COMPILER=<c++>] [-DBUILD_TYPE=<cfg>]
#         [-DINSTALL_FROM=<xcall build dir> -DINSTALL_PREFIX=<prefix>]
#         -P run_consumer.cmake
#
# With INSTALL_FROM, xcall is first installed from that build tree into a clean
# INSTALL_PREFIX, and the consumer finds it there through CMAKE_PREFIX_PATH.
# The consumer's executable `consumer` must exit 0.

cmake_minimum_required(VERSION 3.25)

foreach(var SOURCE_DIR BINARY_DIR GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()

set(config_args)
if(BUILD_TYPE)
  set(config_args --config ${BUILD_TYPE})
endif()

set(configure_args -G "${GENERATOR}")
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CXX_COMPILER)
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(BUILD_TYPE)
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()

if(DEFINED INSTALL_FROM)
  file(REMOVE_RECURSE "${INSTALL_PREFIX}")
  message(STATUS "Installing ${INSTALL_FROM} into ${INSTALL_PREFIX}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} --install "${INSTALL_FROM}" --prefix "${INSTALL_PREFIX}" ${config_args}
    COMMAND_ERROR_IS_FATAL ANY)
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${INSTALL_PREFIX}")
endif()

message(STATUS "Configuring ${SOURCE_DIR}")
execute_process(
  COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BINARY_DIR}" ${configure_args}
  COMMAND_ERROR_IS_FATAL ANY)

message(STATUS "Building ${BINARY_DIR}")
execute_process(
  COMMAND ${CMAKE_COMMAND} --build "${BINARY_DIR}" --parallel ${config_args}
  COMMAND_ERROR_IS_FATAL ANY)

# Single-config generators put the executable at the top of the build tree,
# multi-config ones in a per-config folder.
find_program(consumer_exe consumer
  PATHS "${BINARY_DIR}" "${BINARY_DIR}/${BUILD_TYPE}"
  NO_DEFAULT_PATH NO_CACHE REQUIRED)

message(STATUS "Running ${consumer_exe}")
execute_process(COMMAND "${consumer_exe}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer exited with ${rc}")
endif()
