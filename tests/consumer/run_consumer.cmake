# run_consumer.cmake — configure, build and run one consumer project.
#
#   cmake -DSOURCE_DIR=<consumer> -DBINARY_DIR=<dir> -DGENERATOR=<gen>
#         [-DMAKE_PROGRAM=<prog>] [-DCXX_COMPILER=<c++>] [-DBUILD_TYPE=<cfg>]
#         [-DPREFIX=<installed xcall>] [-DCONSUMER_ARGS=<-D...;-D...>]
#         -P run_consumer.cmake
#
# With PREFIX (an xcall installed there: the install.layout test), the
# consumer finds it through CMAKE_PREFIX_PATH. CONSUMER_ARGS are more
# configure arguments of the consumer. The consumer's executable `consumer`
# must exit 0.

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

if(DEFINED PREFIX)
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${PREFIX}")
endif()
list(APPEND configure_args ${CONSUMER_ARGS})

if(DEFINED PREFIX)
  # A fresh configure each time: a cached find_package result must not hide
  # a change of the installed package.
  file(REMOVE_RECURSE "${BINARY_DIR}")
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
